package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/tests3"
	"github.com/minio/minio-go/v7"
)

// The S3 tests run against a real MinIO server (hack/minio.sh), started
// once for the package.
func TestMain(m *testing.M) {
	tests3.Main(m)
}

func openS3(t *testing.T, prefix string) (*S3, *tests3.Server, string) {
	t.Helper()
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	cfg, err := ParseS3URL(srv.URL(bucket, prefix), srv.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, srv, bucket
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func get(t *testing.T, s Store, key string) []byte {
	t.Helper()
	r, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func TestS3PutGetDelete(t *testing.T) {
	s, srv, bucket := openS3(t, "")
	ctx := context.Background()
	n, sum, err := s.Put(ctx, "ws/model-1", strings.NewReader("weights"))
	if err != nil || n != 7 || sum != sha([]byte("weights")) {
		t.Fatalf("put: %d %s %v", n, sum, err)
	}
	if b := get(t, s, "ws/model-1"); string(b) != "weights" {
		t.Fatalf("got %q", b)
	}
	if objs := srv.Objects(t, bucket); !slices.Equal(objs, []string{"ws/model-1"}) {
		t.Fatalf("objects in the bucket: %v", objs)
	}
	// Put again replaces.
	if _, _, err := s.Put(ctx, "ws/model-1", strings.NewReader("new weights")); err != nil {
		t.Fatal(err)
	}
	if b := get(t, s, "ws/model-1"); string(b) != "new weights" {
		t.Fatalf("after a second put: %q", b)
	}
	if _, err := s.Get(ctx, "ws/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"../escape", "", "/abs", "ws/", "a//b"} {
		if _, _, err := s.Put(ctx, bad, strings.NewReader("x")); err == nil {
			t.Errorf("key %q was accepted", bad)
		}
	}
	if err := s.Delete(ctx, "ws/model-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "ws/model-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, "ws/model-1"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	// An empty artifact is stored as such (the server refuses it later).
	if n, sum, err := s.Put(ctx, "ws/empty", strings.NewReader("")); err != nil || n != 0 || sum != sha(nil) {
		t.Fatalf("empty put: %d %s %v", n, sum, err)
	}
}

func TestS3DeletePrefix(t *testing.T) {
	s, srv, bucket := openS3(t, "berth/artifacts")
	ctx := context.Background()
	for _, k := range []string{"ws1/a", "ws1/b", "ws1/sub/c", "ws10/a", "ws2/a"} {
		if _, _, err := s.Put(ctx, k, strings.NewReader("x "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeletePrefix(ctx, "ws1"); err != nil {
		t.Fatal(err)
	}
	// Only ws1's folder goes: not ws10, which merely starts with "ws1".
	objs := srv.Objects(t, bucket)
	if want := []string{"berth/artifacts/ws10/a", "berth/artifacts/ws2/a"}; !slices.Equal(objs, want) {
		t.Fatalf("left in the bucket: %v, want %v", objs, want)
	}
	if b := get(t, s, "ws10/a"); string(b) != "x ws10/a" {
		t.Fatalf("ws10/a: %q", b)
	}
	if err := s.DeletePrefix(ctx, "nothing-here"); err != nil {
		t.Fatalf("empty prefix: %v", err)
	}
}

// TestS3ManyObjectsDeletePrefix removes more objects than one listing or
// one multi-delete request holds (1,000).
func TestS3ManyObjectsDeletePrefix(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, srv, bucket := openS3(t, "")
	ctx := context.Background()
	client := srv.Client(t)
	// Written directly, many at once: the store's Put is tested elsewhere.
	const n = 1010
	sem := make(chan struct{}, 16)
	errc := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := client.PutObject(ctx, bucket, fmt.Sprintf("ws/m%04d", i), strings.NewReader("x"), 1, minio.PutObjectOptions{})
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeletePrefix(ctx, "ws"); err != nil {
		t.Fatal(err)
	}
	if objs := srv.Objects(t, bucket); len(objs) != 0 {
		t.Fatalf("%d objects left, e.g. %s", len(objs), objs[0])
	}
}

// TestS3StreamsLargeArtifact puts an artifact of several parts from a
// reader that makes it as it goes, checks Put did not hold it whole in
// memory, and reads it back byte for byte.
func TestS3StreamsLargeArtifact(t *testing.T) {
	s, srv, bucket := openS3(t, "big")
	s.cfg.PartSize = 5 << 20 // the S3 minimum, so that 40 MiB makes 9 parts
	const size = 40<<20 + 12345
	ctx := context.Background()
	src := func() io.Reader { return io.LimitReader(&pattern{r: rand.New(rand.NewPCG(1, 2))}, size) }
	h := sha256.New()
	io.Copy(h, src())
	want := hex.EncodeToString(h.Sum(nil))

	base, peak := heapPeak(func() {
		n, sum, err := s.Put(ctx, "ws/big-model", src())
		if err != nil || n != size || sum != want {
			t.Fatalf("put: %d %s %v, want %d %s", n, sum, err, size, want)
		}
	})
	// One part buffer and the garbage of the requests, far from the whole
	// artifact.
	t.Logf("heap during put: %.1f MiB at most, %.1f MiB before, for a %.1f MiB artifact",
		float64(peak)/(1<<20), float64(base)/(1<<20), float64(size)/(1<<20))
	if peak-base > size/2 {
		t.Errorf("the heap grew by %d bytes during the put of %d bytes: it should stream, one part at a time", peak-base, size)
	}
	info, err := srv.Client(t).StatObject(ctx, bucket, "big/ws/big-model", minio.StatObjectOptions{})
	if err != nil || info.Size != size {
		t.Fatalf("stat: %+v %v", info, err)
	}
	// A multipart upload's ETag ends in -PARTS.
	if !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-9") {
		t.Errorf("ETag %s: want a 9-part upload", info.ETag)
	}
	r, err := s.Get(ctx, "ws/big-model")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := sha256.New()
	m, err := io.Copy(got, r)
	if err != nil || m != size || hex.EncodeToString(got.Sum(nil)) != want {
		t.Fatalf("read back %d bytes (%v), sha %x", m, err, got.Sum(nil))
	}
}

// TestS3PutReaderError: a reader that fails (say, an upload over the size
// limit) fails Put with its own error and leaves no object behind.
func TestS3PutReaderError(t *testing.T) {
	s, srv, bucket := openS3(t, "")
	s.cfg.PartSize = 5 << 20
	boom := errors.New("boom")
	r := io.MultiReader(io.LimitReader(&pattern{r: rand.New(rand.NewPCG(3, 4))}, 6<<20), &failing{err: boom})
	if _, _, err := s.Put(context.Background(), "ws/broken", r); !errors.Is(err, boom) {
		t.Fatalf("put: %v, want the reader's error", err)
	}
	if objs := srv.Objects(t, bucket); len(objs) != 0 {
		t.Fatalf("objects after a failed put: %v", objs)
	}
	if _, err := s.Get(context.Background(), "ws/broken"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after a failed put: %v", err)
	}
}

func TestOpenS3Errors(t *testing.T) {
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	open := func(raw string, getenv func(string) string) error {
		cfg, err := ParseS3URL(raw, getenv)
		if err != nil {
			return err
		}
		_, err = OpenS3(ctx, cfg)
		return err
	}
	badSecret := func(k string) string {
		if k == EnvSecretAccessKey {
			return "not-the-secret-123"
		}
		return srv.Getenv(k)
	}
	closed := testenv.FreeAddr(t)
	for _, c := range []struct {
		name, url string
		getenv    func(string) string
		want      string
	}{
		{"no such bucket", srv.URL("no-such-bucket", ""), srv.Getenv, `bucket "no-such-bucket" does not exist`},
		{"bad secret", srv.URL(bucket, ""), badSecret, "credentials are not accepted"},
		{"nothing listening", "s3://" + bucket + "?endpoint=" + closed + "&insecure=true", srv.Getenv, "cannot reach the endpoint"},
		{"plain HTTP endpoint without insecure", "s3://" + bucket + "?endpoint=" + srv.Endpoint, srv.Getenv, "add insecure=true"},
		{"no credentials", srv.URL(bucket, ""), func(string) string { return "" }, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"credentials in the URL", "s3://key:secret@" + bucket + "?endpoint=" + srv.Endpoint, srv.Getenv, "must not contain credentials"},
		{"not s3", "gs://" + bucket, srv.Getenv, "must start with s3://"},
		{"no bucket", "s3:///prefix", srv.Getenv, "names no bucket"},
		{"unknown option", srv.URL(bucket, "") + "&colour=blue", srv.Getenv, `option "colour" is not known`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := open(c.url, c.getenv)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			for _, secret := range []string{tests3.SecretKey, "not-the-secret-123", "secret@"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
			t.Log(err)
		})
	}
}

func TestParseS3URL(t *testing.T) {
	env := func(k string) string {
		return map[string]string{EnvAccessKeyID: "AK", EnvSecretAccessKey: "SK", EnvSessionToken: "ST"}[k]
	}
	c, err := ParseS3URL("s3://models/berth/prod/?endpoint=minio.example:9000&region=eu-west-1&insecure=true", env)
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Endpoint: "minio.example:9000", Bucket: "models", Prefix: "berth/prod/", Region: "eu-west-1", Insecure: true,
		AccessKey: "AK", SecretKey: "SK", SessionToken: "ST"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if s := c.String(); strings.Contains(s, "SK") || strings.Contains(s, "ST") || s != "s3://models/berth/prod/ at http://minio.example:9000" {
		t.Fatalf("String: %q", s)
	}
	c, err = ParseS3URL("s3://models", env)
	if err != nil || c.Endpoint != DefaultS3Endpoint || c.Prefix != "" || c.Insecure {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// heapPeak runs f and samples the heap's live objects while it runs: it
// returns their size before f (after a GC) and the largest seen.
func heapPeak(f func()) (base, peak uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base = read()
	stop, result := make(chan struct{}), make(chan uint64)
	go func() {
		max := base
		for {
			if v := read(); v > max {
				max = v
			}
			select {
			case <-stop:
				result <- max
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		peak = <-result
	}()
	f()
	return base, 0
}

// pattern is an endless reader of pseudo-random bytes.
type pattern struct{ r *rand.Rand }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// TestS3PutRefusedArtifact: an upload that its check refuses after some
// parts went up (a bomb's header after 6 MiB of real content) fails Put
// with the check's error, and leaves neither an object nor an unfinished
// multipart upload in the bucket.
func TestS3PutRefusedArtifact(t *testing.T) {
	s, srv, bucket := openS3(t, "")
	s.cfg.PartSize = 5 << 20
	content := make([]byte, 6<<20)
	(&pattern{r: rand.New(rand.NewPCG(5, 6))}).Read(content)
	archive := tgz(t, entry{name: "real.bin", body: content}, entry{name: "bomb.bin", size: 10 << 30})
	ctx := context.Background()
	c := Checked(bytes.NewReader(archive), "tar.gz", "m", Limits{})
	defer c.Close()
	_, _, err := s.Put(ctx, "ws/bomb", c)
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("put: %v, want the limit error", err)
	}
	if objs := srv.Objects(t, bucket); len(objs) != 0 {
		t.Fatalf("objects after a refused put: %v", objs)
	}
	for u := range srv.Client(t).ListIncompleteUploads(ctx, bucket, "", true) {
		t.Errorf("unfinished upload left: %+v", u)
	}
}

// TestS3RemoveStaleUploads: multipart uploads that a killed server left
// unfinished are aborted once they are older than the given age; younger
// ones (perhaps another server's, in progress) and uploads outside the
// store's prefix stay.
func TestS3RemoveStaleUploads(t *testing.T) {
	s, srv, bucket := openS3(t, "berth")
	ctx := context.Background()
	core := minio.Core{Client: srv.Client(t)}
	for _, key := range []string{"berth/ws/killed-1", "berth/ws/killed-2", "other/not-ours"} {
		if _, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	unfinished := func() (keys []string) {
		for u := range srv.Client(t).ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			keys = append(keys, u.Key)
		}
		slices.Sort(keys)
		return keys
	}
	if got := unfinished(); len(got) != 3 {
		t.Fatalf("unfinished uploads: %v", got)
	}
	// Younger than a day: kept.
	if n, err := s.RemoveStaleUploads(ctx, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("young uploads: removed %d, %v", n, err)
	}
	time.Sleep(1100 * time.Millisecond) // S3 dates have a second's precision
	if n, err := s.RemoveStaleUploads(ctx, time.Second); err != nil || n != 2 {
		t.Fatalf("stale uploads: removed %d, %v", n, err)
	}
	if got := unfinished(); !slices.Equal(got, []string{"other/not-ours"}) {
		t.Fatalf("unfinished uploads left: %v", got)
	}
}

// TestS3List: List gives the keys under a prefix, sorted and without the
// store's own prefix, none for a prefix with nothing, never those of a
// prefix that starts the same.
func TestS3List(t *testing.T) {
	s, _, _ := openS3(t, "berth")
	ctx := context.Background()
	if keys, err := s.List(ctx, "logs/ws"); err != nil || len(keys) != 0 {
		t.Fatalf("an empty prefix: %v %v", keys, err)
	}
	for _, k := range []string{"logs/ws/b/01/2.jsonl", "logs/ws/a/01/1.jsonl", "logs/ws/b/01/1.jsonl", "logs/ws2/a/01/1.jsonl"} {
		if _, _, err := s.Put(ctx, k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.List(ctx, "logs/ws")
	if want := []string{"logs/ws/a/01/1.jsonl", "logs/ws/b/01/1.jsonl", "logs/ws/b/01/2.jsonl"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("List = %v %v, want %v", keys, err, want)
	}
}

// A store whose server refuses writes for lack of space (tests3.FullURL:
// MinIO's 507 XMinioStorageFull to uploads) fails Put with ErrFull and the
// server's words, and stores nothing.
func TestS3PutOnFullStore(t *testing.T) {
	srv := tests3.Start(t)
	bucket := srv.Bucket(t)
	cfg, err := ParseS3URL(srv.FullURL(t, bucket, "p"), srv.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Put(context.Background(), "ws/m1", strings.NewReader("model"))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), tests3.FullMessage) {
		t.Fatalf("Put on a full store: %v, want ErrFull with the server's message", err)
	}
	t.Log(err)
	if objs := srv.Objects(t, bucket); len(objs) != 0 {
		t.Fatalf("objects stored: %v", objs)
	}
}
