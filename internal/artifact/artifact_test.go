package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestDirRemovesStaleUploads: the temporary file of an upload that was
// killed is removed when the store is opened again (RemoveStaleUploads);
// the temporary file of an upload still in progress in this process, and
// the artifacts themselves, stay.
func TestDirRemovesStaleUploads(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ctx := context.Background()
	if _, _, err := d.Put(ctx, "ws/done", strings.NewReader("weights")); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "ws", ".upload-123456")
	if err := os.WriteFile(stale, []byte("half an upload"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An upload in progress: its body blocks until released.
	pr, pw := io.Pipe()
	putDone := make(chan error)
	go func() {
		_, _, err := d.Put(ctx, "ws/uploading", pr)
		putDone <- err
	}()
	pw.Write([]byte("first part"))
	var inProgress string
	for deadline := time.Now().Add(10 * time.Second); inProgress == ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upload made no temporary file")
		}
		ms, _ := filepath.Glob(filepath.Join(root, "ws", ".upload-*"))
		for _, m := range ms {
			if m != stale {
				inProgress = m
			}
		}
	}
	n, err := d.RemoveStaleUploads()
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the 1 stale file", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stale upload is still there: %v", err)
	}
	if _, err := os.Stat(inProgress); err != nil {
		t.Fatalf("the upload in progress lost its file: %v", err)
	}
	pw.Write([]byte(", second part"))
	pw.Close()
	if err := <-putDone; err != nil {
		t.Fatal(err)
	}
	if b := get(t, d, "ws/uploading"); string(b) != "first part, second part" {
		t.Fatalf("the upload in progress stored %q", b)
	}
	if b := get(t, d, "ws/done"); string(b) != "weights" {
		t.Fatalf("an artifact was touched: %q", b)
	}
	// A store that does not exist yet has nothing to clean.
	if n, err := (Dir{Root: filepath.Join(root, "none")}).RemoveStaleUploads(); err != nil || n != 0 {
		t.Fatalf("a missing folder: %d %v", n, err)
	}
}

// TestDirListAndAppend: List gives the keys under a prefix, sorted, none
// for a prefix with nothing (and never another prefix's that starts the
// same); Append grows a file, creating it first.
func TestDirListAndAppend(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	ctx := context.Background()
	if keys, err := d.List(ctx, "logs/ws"); err != nil || len(keys) != 0 {
		t.Fatalf("an empty prefix: %v %v", keys, err)
	}
	for _, k := range []string{"logs/ws/b/01.jsonl", "logs/ws/a/02.jsonl", "logs/ws/a/01.jsonl", "logs/ws2/a/01.jsonl"} {
		if err := d.Append(ctx, k, []byte("one\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Append(ctx, "logs/ws/a/01.jsonl", []byte("two\n")); err != nil {
		t.Fatal(err)
	}
	keys, err := d.List(ctx, "logs/ws")
	if want := []string{"logs/ws/a/01.jsonl", "logs/ws/a/02.jsonl", "logs/ws/b/01.jsonl"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("List = %v %v, want %v", keys, err, want)
	}
	r, _ := d.Get(ctx, "logs/ws/a/01.jsonl")
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "one\ntwo\n" {
		t.Errorf("appended file = %q", b)
	}
	if _, err := d.List(ctx, "../x"); err == nil {
		t.Error("a prefix out of the folder was listed")
	}
}
