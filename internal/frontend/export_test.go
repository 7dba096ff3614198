package frontend

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/frontend/h1"
	"github.com/berth-ml/berth/internal/frontend/rawconn"
)

// testServer is the server the tests' front ends run on; TestOnNetHTTP
// switches it to net/http's to compare.
var testServer = ServerBerth

// ServeForTest serves h on a loopback port with the lean HTTP/1.1 server
// (net/http's while testServer says so), over TLS when tlsConf is set,
// until the test ends. It returns the base URL.
func ServeForTest(t testing.TB, h http.Handler, tlsConf *tls.Config) string {
	t.Helper()
	if testServer == ServerGo {
		srv := httptest.NewUnstartedServer(h)
		if tlsConf != nil {
			srv.TLS = tlsConf
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = rawconn.Listener{Listener: ln} // as Serve's scoring listeners
	scheme := "http://"
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https://"
	}
	ServeListenerForTest(t, h, ln)
	return scheme + ln.Addr().String()
}

// ServeListenerForTest serves h on ln with the lean HTTP/1.1 server until
// the test ends, then checks that it shuts down cleanly.
func ServeListenerForTest(t testing.TB, h http.Handler, ln net.Listener) {
	srv := h1.NewServer(h, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	})
}
