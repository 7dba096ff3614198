package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestModelInitUnpacksWithinTheServersLimits: model-init unpacks under
// the limits the control plane sends with the model (its
// --max-model-unpacked-bytes and --max-model-files), so an archive that
// would unpack beyond them fails the init container with the limit named,
// and nothing is left in the models folder.
func TestModelInitUnpacksWithinTheServersLimits(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"a.bin", "b.bin"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1 << 20})
		tw.Write(make([]byte, 1<<20))
	}
	tw.Close()
	gz.Close()
	archive := buf.Bytes()
	sum := sha256.Sum256(archive)
	var limit atomic.Int64
	limit.Store(1 << 20) // the archive holds 2 MiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Berth-Sha256", hex.EncodeToString(sum[:]))
		w.Header().Set("X-Berth-Format", "tar.gz")
		w.Header().Set("X-Berth-Max-Unpacked-Bytes", strconv.FormatInt(limit.Load(), 10))
		w.Header().Set("X-Berth-Max-Files", "100")
		w.Write(archive)
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("pod-token"), 0o600)
	run := func() (int, string, string) {
		dest := t.TempDir()
		var stdout, stderr bytes.Buffer
		code := Execute(context.Background(), []string{"model-init", "--source", srv.URL, "--models", "m:1", "--token-file", tokenFile, "--dest", dest, "--timeout", "20s"},
			&stdout, &stderr, func(string) string { return "" })
		return code, stderr.String(), dest
	}
	code, stderr, dest := run()
	if code == 0 || !strings.Contains(stderr, "model m:1: unpack: the artifact unpacks to more than 1MiB, the limit for a model (--max-model-unpacked-bytes=1MiB on the server") {
		t.Fatalf("over the limit: exit %d, %s", code, stderr)
	}
	if left, _ := os.ReadDir(filepath.Join(dest, "m")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	// Under a larger limit, the same archive unpacks.
	limit.Store(2 << 20)
	code, stderr, dest = run()
	if fi, err := os.Stat(filepath.Join(dest, "m", "1", "b.bin")); code != 0 || err != nil || fi.Size() != 1<<20 {
		t.Fatalf("within the limit: exit %d, %s, %v", code, stderr, err)
	}
}
