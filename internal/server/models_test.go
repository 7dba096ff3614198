package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/servertest"
)

// targz makes a tar.gz of files (name → size in bytes of zeros, or
// content); a file with a negative size gets a header of -size bytes and
// no content, as a forged archive would.
func targz(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		size := int64(len(f.body))
		if f.forged > 0 {
			size = f.forged
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if f.forged > 0 {
			tw.Write(make([]byte, 1<<20))
			tw.Flush()
			gz.Close()
			return buf.Bytes()
		}
		tw.Write(f.body)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

type tarFile struct {
	name   string
	body   []byte
	forged int64 // a header that claims this size, and 1 MiB of content
}

// register posts an artifact as the CLI does and returns the status and
// the error, if any.
func register(t *testing.T, e *env, ws, name, fileName, format string, body []byte) (int, api.ErrorResponse, string) {
	t.Helper()
	q := url.Values{"name": {name}, "fileName": {fileName}, "format": {format}}
	return raw(t, "POST", e.url+"/api/v1/workspaces/"+ws+"/models?"+q.Encode(), tokenOf(e.owner, e), string(body))
}

// storedFiles lists every file in the artifact folder (artifacts and
// temporary files alike).
func storedFiles(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(e.dataDir, "artifacts"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestRegisterModelRefusesInvalidArtifacts: a file name with a NUL or
// another control character, and a tar.gz that is not one, get 400 with
// the problem named; nothing is stored, not even a temporary file.
func TestRegisterModelRefusesInvalidArtifacts(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsm")
	var gzNotTar bytes.Buffer
	gz := gzip.NewWriter(&gzNotTar)
	gz.Write(bytes.Repeat([]byte("plain text, not a tar archive\n"), 100))
	gz.Close()
	good := targz(t, []tarFile{{name: "weights.bin", body: []byte("weights")}})
	for _, tc := range []struct {
		name, fileName, format string
		body                   []byte
		code, want             string
	}{
		{"NUL in the file name", "model\x00.bin", "file", []byte("weights"), api.CodeInvalidValue, `fileName "model\x00.bin" contains a control character`},
		{"newline in the file name", "model\n.bin", "file", []byte("weights"), api.CodeInvalidValue, "contains a control character"},
		{"DEL in the file name", "model\x7f", "tar.gz", good, api.CodeInvalidValue, "contains a control character"},
		{"not UTF-8", "model\xff", "file", []byte("weights"), api.CodeInvalidValue, "fileName is not valid UTF-8"},
		{"a folder in the file name", "a/b.bin", "file", []byte("weights"), api.CodeInvalidValue, "must be a plain file name"},
		{"tar.gz that is not gzip", "model", "tar.gz", []byte("these are not gzip bytes"), api.CodeInvalidArtifact, "the artifact is not a valid tar.gz archive: it is not gzip-compressed (gzip: invalid header); nothing was stored"},
		{"gzip that is not tar", "model", "tar.gz", gzNotTar.Bytes(), api.CodeInvalidArtifact, "the artifact is not a valid tar.gz archive: archive/tar: invalid tar header"},
		{"tar.gz cut short", "model", "tar.gz", good[:len(good)-20], api.CodeInvalidArtifact, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, er, body := register(t, e, "wsm", "m", tc.fileName, tc.format, tc.body)
			if status != 400 || er.Error.Code != tc.code || !strings.Contains(er.Error.Message, tc.want) {
				t.Fatalf("got %d %s; want 400 %s with %q", status, body, tc.code, tc.want)
			}
			if files := storedFiles(t, e); len(files) != 0 {
				t.Fatalf("stored: %v", files)
			}
		})
	}
	if ms, err := e.owner.ListModels(context.Background(), "wsm", ""); err != nil || len(ms) != 0 {
		t.Fatalf("models: %v %v", ms, err)
	}
	// A good archive registers.
	if status, _, body := register(t, e, "wsm", "m", "model", "tar.gz", good); status != 201 {
		t.Fatalf("a good archive: %d %s", status, body)
	}
}

// TestRegisterModelRefusesArchiveBombs: an archive that would unpack to
// more than the server's limit (8 GiB by default) is refused with 413 as
// its header arrives, naming the limit and its value; nothing is stored.
func TestRegisterModelRefusesArchiveBombs(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsb")
	bomb := targz(t, []tarFile{{name: "config.json", body: []byte("{}")}, {name: "weights.bin", forged: 10 << 30}})
	status, er, body := register(t, e, "wsb", "bomb", "bomb", "tar.gz", bomb)
	if status != 413 || er.Error.Code != api.CodeArtifactTooLarge ||
		!strings.Contains(er.Error.Message, "the artifact unpacks to more than 8GiB, the limit for a model (--max-model-unpacked-bytes=8GiB on the server; an administrator can raise it); nothing was stored") {
		t.Fatalf("got %d %s", status, body)
	}
	if files := storedFiles(t, e); len(files) != 0 {
		t.Fatalf("stored: %v", files)
	}
}

// TestRegisterModelRefusalReachesTheClient: an upload refused early (its
// first bytes are not gzip) gets the server's answer through the SDK even
// though the client is still sending a large body.
func TestRegisterModelRefusalReachesTheClient(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsc")
	big := make([]byte, 64<<20)
	r := rand.NewChaCha8([32]byte{})
	r.Read(big)
	for _, size := range []int64{int64(len(big)), -1} {
		_, err := e.owner.RegisterModel(context.Background(), "wsc", client.ModelUpload{Name: "m", FileName: "m", Format: "tar.gz", Body: bytes.NewReader(big), Size: size})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Code() != api.CodeInvalidArtifact || !strings.Contains(ce.Error(), "not gzip-compressed") {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if files := storedFiles(t, e); len(files) != 0 {
		t.Fatalf("stored: %v", files)
	}
}

// TestModelLimitsAreServerSettings: the limits come from the server's
// configuration; registration enforces them and says their values, and
// downloads carry them to the replicas that unpack (model-init).
func TestModelLimitsAreServerSettings(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, server.Config{DataDir: dir, ModelLimits: artifact.Limits{MaxUnpackedBytes: 1 << 20, MaxFiles: 3}})
	owner, _ := client.New(srv.URL, srv.Token)
	e := &env{t: t, url: srv.URL, dataDir: dir, owner: owner, log: srv.Log, srv: srv.Server}
	e.workspace("wsl")
	zeros := func(n int) []byte { return make([]byte, n) }
	for _, tc := range []struct {
		name, format string
		body         []byte
		want         string
	}{
		{"2MiB in an archive", "tar.gz", targz(t, []tarFile{{name: "a", body: zeros(1 << 20)}, {name: "b", body: zeros(1 << 20)}}), "unpacks to more than 1MiB, the limit for a model (--max-model-unpacked-bytes=1MiB on the server"},
		{"4 files", "tar.gz", targz(t, []tarFile{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}}), "holds more than 3 files and folders, the limit for a model (--max-model-files=3 on the server"},
		{"a 2MiB file", "file", zeros(2 << 20), "--max-model-unpacked-bytes=1MiB"},
	} {
		status, er, body := register(t, e, "wsl", "m", "m", tc.format, tc.body)
		if status != 413 || er.Error.Code != api.CodeArtifactTooLarge || !strings.Contains(er.Error.Message, tc.want) {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if files := storedFiles(t, e); len(files) != 0 {
		t.Fatalf("stored: %v", files)
	}
	// At the limits: accepted.
	if status, _, body := register(t, e, "wsl", "m", "m", "tar.gz", targz(t, []tarFile{{name: "a", body: zeros(1 << 19)}, {name: "b", body: zeros(1 << 19)}, {name: "c"}})); status != 201 {
		t.Fatalf("at the limits: %d %s", status, body)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/workspaces/wsl/models/m/versions/1/download", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := artifact.LimitsFromHeader(resp.Header); got != (artifact.Limits{MaxUnpackedBytes: 1 << 20, MaxFiles: 3}) {
		t.Fatalf("limits in the download's headers: %+v (%v)", got, resp.Header)
	}
}

// TestLocalDeployFailsAtOnceOnUnpackError: a stored artifact that cannot
// be unpacked (one registered before registration checked archives, here
// overwritten in the store) fails a deploy on the local compute at once,
// with the cause in the operation's error and the service's, instead of
// waiting for replicas that never start.
func TestLocalDeployFailsAtOnceOnUnpackError(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, server.Config{DataDir: dir, ReadyTimeout: 60 * time.Second})
	owner, _ := client.New(srv.URL, srv.Token)
	e := &env{t: t, url: srv.URL, dataDir: dir, owner: owner, log: srv.Log, srv: srv.Server}
	e.workspace("wsx")
	ctx := context.Background()
	op, err := owner.CreateCompute(ctx, "wsx", api.ComputeRequest{Name: "laptop", Type: "local", Origin: api.OriginCreated})
	if err != nil {
		t.Fatal(err)
	}
	if op = wait(t, owner, op); op.State != api.OpSucceeded {
		t.Fatalf("create local: %+v", op.Error)
	}
	if status, _, body := register(t, e, "wsx", "m", "m", "tar.gz", targz(t, []tarFile{{name: "w.bin", body: []byte("weights")}})); status != 201 {
		t.Fatalf("register: %d %s", status, body)
	}
	files := storedFiles(t, e)
	if len(files) != 1 {
		t.Fatalf("stored: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("these bytes are not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	op, err = owner.DeployService(ctx, "wsx", api.ServiceRequest{Name: "svc", ServiceSpec: api.ServiceSpec{Compute: "laptop", Models: []string{"m:1"},
		Command: []string{"/nonexistent/model-server"}, Replicas: 1}})
	if err != nil {
		t.Fatal(err)
	}
	op = wait(t, owner, op)
	took := time.Since(start)
	if op.State != api.OpFailed || op.Error == nil || op.Error.Code != api.CodeModelUnpackFailed ||
		!strings.Contains(op.Error.Message, "no replica of svc can start: model m:1 cannot be unpacked: the artifact is not a valid tar.gz archive: it is not gzip-compressed") {
		t.Fatalf("deploy: %s %+v", op.State, op.Error)
	}
	if took > 20*time.Second {
		t.Fatalf("the deploy took %s to fail", took)
	}
	sv, err := owner.GetService(ctx, "wsx", "svc")
	if err != nil || sv.State != api.ServiceFailed {
		t.Fatalf("service: %+v %v", sv, err)
	}
	// Nothing half unpacked is left for the next try.
	if left, _ := filepath.Glob(filepath.Join(dir, "local-models", "*")); len(left) != 0 {
		t.Fatalf("left in local-models: %v", left)
	}
}

// TestServerRemovesStaleUploadsOnStart: a temporary file that a killed
// upload left in the artifact folder is gone once the server has started;
// artifacts stay.
func TestServerRemovesStaleUploadsOnStart(t *testing.T) {
	dir := t.TempDir()
	wsDir := filepath.Join(dir, "artifacts", "0b6c3f57-ws")
	os.MkdirAll(wsDir, 0o700)
	stale := filepath.Join(wsDir, ".upload-4242")
	kept := filepath.Join(wsDir, "a-model-id")
	for _, f := range []string{stale, kept} {
		if err := os.WriteFile(f, []byte("bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := servertest.Start(t, server.Config{DataDir: dir})
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale upload survived the start: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("an artifact was removed: %v", err)
	}
	if !strings.Contains(srv.Log.String(), "removed unfinished uploads from the artifact store") {
		t.Fatalf("log: %s", srv.Log.String())
	}
}
