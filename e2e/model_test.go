package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

func TestCLIModels(t *testing.T) {
	p, env := teamEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "model.bin")
	os.WriteFile(file, []byte("weights v1"), 0o644)
	var m api.Model
	r := berth(t, env, "model", "register", "-n", "iris", "--path", file, "--tag", "algo=xgboost", "--description", "first", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || m.Version != 1 || m.Size != 10 || m.Format != "file" || m.Tags["algo"] != "xgboost" {
		t.Fatalf("register v1: %+v", r)
	}
	os.WriteFile(file, []byte("weights version two"), 0o644)
	r = berth(t, env, "model", "register", "-n", "IRIS", "--path", file, "-o", "json")
	if json.Unmarshal([]byte(r.stdout), &m) != nil || m.Version != 2 {
		t.Fatalf("register v2 (name in another case): %+v", r)
	}
	// A directory goes up as tar.gz.
	mdir := filepath.Join(dir, "bundle")
	os.MkdirAll(filepath.Join(mdir, "sub"), 0o755)
	os.WriteFile(filepath.Join(mdir, "a.txt"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(mdir, "sub", "b.txt"), []byte("B"), 0o644)
	r = berth(t, env, "model", "register", "-n", "bundle", "--path", mdir, "-o", "json")
	if json.Unmarshal([]byte(r.stdout), &m) != nil || m.Format != "tar.gz" || m.Version != 1 {
		t.Fatalf("register dir: %+v", r)
	}
	r = berth(t, env, "model", "list", "-o", "tsv", "--query", "[].[name, version]")
	if strings.Fields(r.stdout)[0] != "bundle" || len(strings.Fields(r.stdout)) != 6 {
		t.Fatalf("list: %q", r.stdout)
	}
	r = berth(t, env, "model", "show", "-n", "iris", "-o", "json")
	if json.Unmarshal([]byte(r.stdout), &m) != nil || m.Version != 2 {
		t.Fatalf("show latest: %+v", r)
	}
	out := filepath.Join(dir, "down.bin")
	if r := berth(t, env, "model", "download", "-n", "iris", "--version", "1", "-f", out); r.code != 0 {
		t.Fatalf("download: %+v", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "weights v1" {
		t.Fatalf("downloaded %q", b)
	}
	tgz := filepath.Join(dir, "bundle.tgz")
	berth(t, env, "model", "download", "-n", "bundle", "-f", tgz)
	f, _ := os.Open(tgz)
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	f.Close()
	if files["a.txt"] != "A" || files["sub/b.txt"] != "B" {
		t.Fatalf("bundle contents: %v", files)
	}
	if r := berth(t, env, "model", "delete", "-n", "iris", "--version", "1"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if r := berth(t, env, "model", "show", "-n", "iris", "--version", "1"); r.code != 1 || !strings.Contains(r.stderr, `model "iris" has no version 1`) {
		t.Fatalf("show deleted: %+v", r)
	}
	r = berth(t, env, "model", "register", "-n", "-bad name", "--path", file)
	if r.code != 1 || !strings.Contains(r.stderr, "may only contain letters, digits") || !strings.Contains(r.stderr, "must start with a letter or digit") {
		t.Fatalf("bad name: %+v", r)
	}
	// Deleting the workspace removes its artifacts.
	if r := berth(t, env, "workspace", "delete", "-n", "team"); r.code != 0 {
		t.Fatalf("workspace delete: %+v", r)
	}
	left, _ := os.ReadDir(filepath.Join(p.dataDir, "artifacts"))
	if len(left) != 0 {
		t.Fatalf("artifacts left after the workspace was deleted: %v", left)
	}
}

// TestCLIModelLimits: the limits on what a model unpacks to are flags of
// `berth server`; `model register` of a folder beyond them fails with the
// limit and its value, and stores nothing; a bad value is a usage error.
func TestCLIModelLimits(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, freeAddr(t), nil, "--max-model-unpacked-bytes", "1MiB", "--max-model-files", "5")
	env := []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + dir, "BERTH_WORKSPACE=team"}
	if r := berth(t, env, "workspace", "create", "-n", "team"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	folder := func(sizes ...int) string {
		d := t.TempDir()
		for i, n := range sizes {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("part-%d.bin", i)), make([]byte, n), 0o644)
		}
		return d
	}
	r := berth(t, env, "model", "register", "-n", "big", "--path", folder(2<<20))
	if r.code != 1 || !strings.Contains(r.stderr, "the artifact unpacks to more than 1MiB, the limit for a model (--max-model-unpacked-bytes=1MiB on the server") {
		t.Fatalf("over the size limit: %+v", r)
	}
	r = berth(t, env, "model", "register", "-n", "many", "--path", folder(1, 1, 1, 1, 1, 1))
	if r.code != 1 || !strings.Contains(r.stderr, "holds more than 5 files and folders, the limit for a model (--max-model-files=5 on the server") {
		t.Fatalf("over the file limit: %+v", r)
	}
	var stored []string
	filepath.WalkDir(filepath.Join(dir, "artifacts"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			stored = append(stored, p)
		}
		return nil
	})
	if len(stored) != 0 {
		t.Fatalf("stored: %v", stored)
	}
	if r := berth(t, env, "model", "register", "-n", "fits", "--path", folder(1<<19, 1<<19)); r.code != 0 {
		t.Fatalf("within the limits: %+v", r)
	}
	r = berth(t, nil, "server", "--data-dir", t.TempDir(), "--max-model-unpacked-bytes", "lots")
	if r.code != 2 || !strings.Contains(r.stderr, `--max-model-unpacked-bytes: "lots" is not a size`) {
		t.Fatalf("a bad limit: %+v", r)
	}
}
