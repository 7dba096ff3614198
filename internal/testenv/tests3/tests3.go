// Package tests3 gives tests a real S3 server: the MinIO binary that
// hack/minio.sh builds, run on 127.0.0.1 once per test package, with a new
// bucket for each test.
//
// A package that uses it stops the server in its TestMain, with Main or
// by calling Stop after m.Run.
package tests3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/testenv"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvBinary names the MinIO server binary (hack/minio.sh prints its path).
const EnvBinary = "BERTH_TEST_MINIO"

// EnvRequire, when "1", makes a missing MinIO fail tests instead of skipping
// them; the test script sets it so CI never skips silently.
const EnvRequire = "BERTH_REQUIRE_MINIO"

// The server's root credentials: a throwaway server on loopback.
const (
	AccessKey = "berth-test"
	SecretKey = "berth-test-secret-3f9c"
)

// Server is the running MinIO.
type Server struct {
	// Endpoint is 127.0.0.1:PORT (plain HTTP).
	Endpoint string
	cmd      *exec.Cmd
	dir      string
	done     chan struct{}
	log      *lockedLog
}

var (
	once     sync.Once
	srv      *Server
	startErr error
)

// Binary finds the MinIO binary: BERTH_TEST_MINIO, or else the one that
// hack/minio.sh caches in the repository's .cache/minio/bin.
func Binary() string {
	if b := os.Getenv(EnvBinary); b != "" {
		return b
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			b := filepath.Join(dir, ".cache", "minio", "bin", "minio")
			if _, serr := os.Stat(b); serr == nil {
				return b
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return ""
}

// Start returns the package's MinIO server, starting it on first use.
// Without a binary the test is skipped, or fails when BERTH_REQUIRE_MINIO=1.
func Start(t testing.TB) *Server {
	testenv.SkipShort(t, "MinIO")
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("no MinIO binary but %s=1: run hack/minio.sh and set %s to the path it prints", EnvRequire, EnvBinary)
		}
		t.Skipf("no MinIO: set %s (hack/minio.sh builds it and prints the path)", EnvBinary)
	}
	once.Do(func() { srv, startErr = start(bin) })
	if startErr != nil {
		t.Fatalf("start MinIO: %v", startErr)
	}
	select {
	case <-srv.done:
		t.Fatalf("MinIO has exited:\n%s", srv.log.String())
	default:
	}
	return srv
}

// Main is a TestMain for a package that uses the server: it runs the
// package's tests, stops the server and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop ends the server (if one was started) and removes its data.
func Stop() {
	if srv == nil {
		return
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		srv.cmd.Process.Kill()
		<-srv.done
	}
	os.RemoveAll(srv.dir)
}

// dataDir is where the server keeps its data: in memory (/dev/shm)
// where there is one. MinIO refuses an upload of unknown size (Berth's
// artifact store streams them) unless its drive has 2 GiB free, since it
// assumes 1 GiB and doubles it for erasure coding; on a machine whose disk
// a large Go build cache nearly fills, the tests failed for that, not for
// anything of Berth's. The tests' objects are small.
func dataDir() (string, error) {
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Bavail*uint64(st.Bsize) > 4<<30 {
		if dir, err := os.MkdirTemp("/dev/shm", "berth-minio-"); err == nil {
			return dir, nil
		}
	}
	return os.MkdirTemp("", "berth-minio-")
}

func start(bin string) (*Server, error) {
	dir, err := dataDir()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken between the check and MinIO's listen: retry.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startOnce(bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func startOnce(bin, dir string) (*Server, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	console, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"HOME="+dir, // MinIO keeps its own config under $HOME/.minio
	)
	log := &lockedLog{}
	cmd.Stdout, cmd.Stderr = log, log
	// The server dies with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Endpoint: addr, cmd: cmd, dir: dir, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("MinIO exited at start:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("MinIO not ready on %s after 60s:\n%s", addr, log.String())
		}
	}
}

// Client is an S3 client with the root credentials.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Secure: false})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket makes a new, empty bucket for one test and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "berth-test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return name
}

// URL is the artifact store URL of a bucket (and prefix) on this server.
func (s *Server) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&insecure=true"
}

// FullURL is the artifact store URL of a bucket (and prefix) behind a
// proxy that answers every upload as MinIO does when its drive is full
// (507 XMinioStorageFull) and passes the rest to this server: a full disk
// cannot be made here.
func (s *Server) FullURL(t testing.TB, bucket, prefix string) string {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: s.Endpoint})
	full := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInsufficientStorage)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code><Message>%s</Message><BucketName>%s</BucketName></Error>`, FullMessage, bucket)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(full.Close)
	return strings.Replace(s.URL(bucket, prefix), s.Endpoint, strings.TrimPrefix(full.URL, "http://"), 1)
}

// FullMessage is what MinIO says when its drive is too full to write.
const FullMessage = "Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed."

// Env gives the server's credentials as the store reads them.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}

// Getenv is Env as a lookup function.
func (s *Server) Getenv(k string) string {
	switch k {
	case "AWS_ACCESS_KEY_ID":
		return AccessKey
	case "AWS_SECRET_ACCESS_KEY":
		return SecretKey
	}
	return ""
}

// Objects lists the object names in a bucket (for checks).
func (s *Server) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	var names []string
	for o := range s.Client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", bucket, o.Err)
		}
		names = append(names, o.Key)
	}
	return names
}

type lockedLog struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < 1<<20 {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
