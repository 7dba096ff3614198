package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/berth-ml/berth/internal/frontend/h1"
	"github.com/berth-ml/berth/internal/frontend/rawconn"
	"golang.org/x/sync/errgroup"
)

// Listeners are where a front end serves; empty addresses are not served.
type Listeners struct {
	HTTP  string // scoring over HTTP, plus /healthz and /readyz
	HTTPS string // scoring over TLS
	Admin string // /metrics, /internal/load, /healthz, /readyz
}

// Handler is the scoring handler with the health endpoints in front.
func (f *Frontend) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		case "/readyz":
			writeJSON(w, readyStatus(f.ready.Load()), map[string]bool{"ready": f.ready.Load()})
			return
		}
		if strings.HasPrefix(r.URL.Path, ACMEPrefix) {
			f.serveACME(w, r)
			return
		}
		f.ServeHTTP(w, r)
	})
}

// AdminHandler serves metrics and the load other front ends' autoscaler reads.
func (f *Frontend) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", f.MetricsHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/internal/load", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]Load{}
		for _, rt := range f.Services() {
			if l, ok := f.LoadOf(rt.Service); ok {
				out[rt.Service] = l
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /internal/wake", f.serveWake)
	h := f.Handler()
	mux.Handle("/healthz", h)
	mux.Handle("/readyz", h)
	return mux
}

// Server kinds for Frontend.HTTPServer.
const (
	ServerBerth = "berth" // h1.Server: the lean HTTP/1.1 server (the default)
	ServerGo    = "go"    // net/http's server
)

// server is what Serve needs of net/http's server and of h1.Server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Serve answers on the listeners until ctx ends, then drains open requests.
// The scoring listeners use h1.Server unless f.HTTPServer is ServerGo; the
// admin listener always uses net/http.
func (f *Frontend) Serve(ctx context.Context, l Listeners) error {
	switch f.HTTPServer {
	case "", ServerBerth, ServerGo:
	default:
		return fmt.Errorf("unknown HTTP server %q (want %s or %s)", f.HTTPServer, ServerBerth, ServerGo)
	}
	g, gctx := errgroup.WithContext(ctx)
	var servers []server
	start := func(addr string, h http.Handler, tlsConf *tls.Config, scoring bool) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		var srv server
		if scoring && f.HTTPServer != ServerGo {
			ln = rawconn.Listener{Listener: ln}
			srv = h1.NewServer(h, f.log)
		} else {
			srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
				MaxHeaderBytes: 64 << 10}
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		servers = append(servers, srv)
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		f.log.Info("berth-fe listening", "address", ln.Addr().String(), "tls", tlsConf != nil)
		return nil
	}
	if err := start(l.HTTP, f.Handler(), nil, true); err != nil {
		return err
	}
	if err := start(l.HTTPS, f.Handler(), f.TLSConfig(), true); err != nil {
		return err
	}
	if err := start(l.Admin, f.AdminHandler(), nil, false); err != nil {
		return err
	}
	g.Go(func() error {
		f.reqlog.Run(gctx)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}
