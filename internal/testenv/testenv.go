// Package testenv and the packages under it are what Berth's tests run
// against, never what it ships: a simulated Kubernetes cluster
// (simcluster), an ACME CA (pebble), an S3 server (tests3), PostgreSQL
// (testdb), Berth's image under podman (imagetest), in-process servers
// (servertest), certificates (testcert) and a compute type whose cloud is
// a directory (testprovider, linked into test builds of berth only).
//
// `go test -short ./...` is the fast lane: every helper that would start
// an external binary skips its test instead.
package testenv

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/berth-ml/berth/internal/freeport"
)

// SkipShort skips t under -short: what needs an external binary (a
// simulated cluster, Pebble, PostgreSQL, MinIO, podman) runs in the full
// suite (./hack/test.sh) only.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: not run with -short", what)
	}
}

// FreeAddr returns a free "127.0.0.1:PORT" (see freeport.Addr); t fails
// when there is none.
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Send sends req with hc and returns the answer's status and body, or 0
// and the error when no answer came.
func Send(hc *http.Client, req *http.Request) (int, string) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Load calls fn from n goroutines (fn gets the goroutine's number), each
// again as soon as it returns, until stop is called; stop returns when
// every goroutine has ended.
func Load(n int, fn func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				fn(i)
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// Buffer collects what a process or server writes, safe to read while it
// is written (logs a test searches as they come).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
