package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/berth-ml/berth/internal/testenv/tests3"
)

// TestTwoServersShareS3Artifacts runs two servers on one PostgreSQL
// database and one S3 bucket (a real MinIO): a model registered through
// one downloads byte for byte through the other, and deletes through
// either reach the bucket. Neither server keeps artifacts on its disk.
func TestTwoServersShareS3Artifacts(t *testing.T) {
	s3 := tests3.Start(t)
	db := testdb.Postgres(t, "")
	bucket := s3.Bucket(t)
	store := s3.URL(bucket, "berth/prod")
	key := make([]byte, 32)
	rand.Read(key)
	env := append([]string{"BERTH_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}, s3.Env()...)
	dirA, dirB := t.TempDir(), t.TempDir()
	// One is told by flag, the other by environment variable.
	a := startServer(t, dirA, freeAddr(t), env, "--database", db, "--artifact-store", store)
	b := startServer(t, dirB, freeAddr(t), append(env, "BERTH_ARTIFACT_STORE="+store), "--database", db)
	tok := ownerToken(t, dirA)
	ca, _ := client.New(a.url(), tok)
	cb, _ := client.New(b.url(), tok)
	ctx := context.Background()
	ws, err := ca.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}

	// Larger than one upload part (16 MiB), so it goes up in two.
	model := make([]byte, 20<<20+777)
	rand.Read(model)
	sum := sha256.Sum256(model)
	m, err := ca.RegisterModel(ctx, "shared", client.ModelUpload{Name: "big", FileName: "model.bin",
		Body: bytes.NewReader(model), Size: int64(len(model))})
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(model)) || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("registered %d bytes, sha %s; want %d, %x", m.Size, m.SHA256, len(model), sum)
	}
	var got bytes.Buffer
	if err := cb.DownloadModel(ctx, "shared", "big", 1, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), model) {
		t.Fatalf("downloaded %d bytes through the other server, not the %d registered", got.Len(), len(model))
	}
	// A small second model, registered through B (chunked: size unknown).
	if _, err := cb.RegisterModel(ctx, "shared", client.ModelUpload{Name: "small", FileName: "w.txt",
		Body: strings.NewReader("small weights"), Size: -1}); err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if err := ca.DownloadModel(ctx, "shared", "small", 0, &got); err != nil || got.String() != "small weights" {
		t.Fatalf("small model through A: %q %v", got.String(), err)
	}
	objs := s3.Objects(t, bucket)
	if len(objs) != 2 || !slices.Contains(objs, "berth/prod/"+ws.ID+"/"+m.ID) {
		t.Fatalf("objects in the bucket: %v, want two under berth/prod/%s/", objs, ws.ID)
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "artifacts")); err == nil {
			t.Errorf("%s has an artifacts folder: the S3 store should keep them all", dir)
		}
	}

	// Deleting through B removes the object A wrote.
	if err := cb.DeleteModel(ctx, "shared", "big", 1); err != nil {
		t.Fatal(err)
	}
	if objs := s3.Objects(t, bucket); len(objs) != 1 || slices.Contains(objs, "berth/prod/"+ws.ID+"/"+m.ID) {
		t.Fatalf("after deleting big: %v", objs)
	}
	// Deleting the workspace through A removes the rest.
	if err := ca.DeleteWorkspace(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	if objs := s3.Objects(t, bucket); len(objs) != 0 {
		t.Fatalf("after deleting the workspace: %v", objs)
	}

	for _, p := range []*serverProc{a, b} {
		log := p.log.String()
		if strings.Contains(log, tests3.SecretKey) {
			t.Errorf("server %s logged the S3 secret key:\n%s", p.addr, log)
		}
		if !strings.Contains(log, "artifacts=\"s3://"+bucket+"/berth/prod/ at http://"+s3.Endpoint+"\"") {
			t.Errorf("server %s does not say where its artifacts are:\n%s", p.addr, log)
		}
	}
}

// TestServerRefusesBadArtifactStore: `berth server` with an S3 store it
// cannot use stops at once with an error that says what is wrong (and
// shows no secret), before it touches the database.
func TestServerRefusesBadArtifactStore(t *testing.T) {
	s3 := tests3.Start(t)
	bucket := s3.Bucket(t)
	const wrongSecret = "wrong-secret-5b1e"
	for _, c := range []struct {
		name, store string
		env         []string
		want        string
	}{
		{"no such bucket", s3.URL("no-such-bucket", ""), s3.Env(), `bucket "no-such-bucket" does not exist`},
		{"wrong secret", s3.URL(bucket, ""), []string{"AWS_ACCESS_KEY_ID=" + tests3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + wrongSecret},
			"the credentials are not accepted"},
		{"nothing listening", "s3://" + bucket + "?endpoint=" + freeAddr(t) + "&insecure=true", s3.Env(), "cannot reach the endpoint"},
		{"no credentials", s3.URL(bucket, ""), nil, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := berth(t, append(c.env, "BERTH_ARTIFACT_STORE="+c.store), "server", "--data-dir", dir, "--listen", freeAddr(t))
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, c.want)
			}
			if strings.Contains(r.stderr+r.stdout, tests3.SecretKey) || strings.Contains(r.stderr+r.stdout, wrongSecret) {
				t.Fatalf("the error shows the secret key: %s", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "berth.db")); err == nil {
				t.Error("the server opened its database before checking the artifact store")
			}
			t.Logf("stderr: %s", strings.TrimSpace(r.stderr))
		})
	}
}

// TestModelRegisterOnFullStore: when the S3 server refuses writes for lack
// of space (tests3.FullURL), `berth model register` fails with 507
// ArtifactStoreFull and the store's words, not a 500 with a log
// reference; the bucket and endpoint go to the server's log only, and no
// model is recorded.
func TestModelRegisterOnFullStore(t *testing.T) {
	s3 := tests3.Start(t)
	bucket := s3.Bucket(t)
	store := s3.FullURL(t, bucket, "berth")
	dir := t.TempDir()
	srv := startServer(t, dir, freeAddr(t), s3.Env(), "--artifact-store", store)
	tok := ownerToken(t, dir)
	c, _ := client.New(srv.url(), tok)
	if _, err := c.CreateWorkspace(context.Background(), api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	env := []string{"BERTH_SERVER=" + srv.url(), "BERTH_TOKEN=" + tok, "BERTH_WORKSPACE=team"}
	r := berth(t, env, "model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	if r.code != 1 || !strings.Contains(r.stderr, tests3.FullMessage) || !strings.Contains(r.stderr, "ArtifactStoreFull") ||
		!strings.Contains(r.stderr, "Free space in the store, then register again") || strings.Contains(r.stderr, bucket) {
		t.Fatalf("register on a full store: %+v", r)
	}
	t.Log(strings.TrimSpace(r.stderr))
	if !strings.Contains(srv.log.String(), "found the artifact store full") || !strings.Contains(srv.log.String(), bucket) {
		t.Errorf("the server's log does not say which store is full:\n%s", srv.log.String())
	}
	if ms, err := c.ListModels(context.Background(), "team", ""); err != nil || len(ms) != 0 {
		t.Fatalf("models after the refused register: %+v %v", ms, err)
	}
}
