package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDirStore(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	ctx := context.Background()
	n, sum, err := d.Put(ctx, "ws/model-1", strings.NewReader("weights"))
	want := sha256.Sum256([]byte("weights"))
	if err != nil || n != 7 || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("put: %d %s %v", n, sum, err)
	}
	r, err := d.Get(ctx, "ws/model-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "weights" {
		t.Fatalf("got %q", b)
	}
	if _, err := d.Get(ctx, "ws/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, _, err := d.Put(ctx, "../escape", strings.NewReader("x")); err == nil {
		t.Fatal("a key with .. was accepted")
	}
	if err := d.DeletePrefix(ctx, "ws"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "ws/model-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
