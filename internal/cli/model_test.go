package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/internal/artifact"
)

// TestTarFS: a model folder goes up as tar.gz with its nested files and
// comes back whole through the same unpacking replicas use; a symbolic
// link is refused rather than followed.
func TestTarFS(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "weights"), 0o755)
	os.WriteFile(filepath.Join(src, "metadata.json"), []byte(`{"name":"m"}`), 0o644)
	os.WriteFile(filepath.Join(src, "weights", "model.bin"), []byte("weights"), 0o644)
	var buf bytes.Buffer
	if err := tarFS(os.DirFS(src), &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := artifact.Unpack(&buf, "tar.gz", "", dst, artifact.Limits{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "weights", "model.bin")); err != nil || string(b) != "weights" {
		t.Fatalf("nested file: %q %v", b, err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := tarFS(os.DirFS(src), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "link is a symbolic link; models are uploaded without links") {
		t.Fatalf("symbolic link: %v", err)
	}
}
