// Package servertest runs a Berth server inside a test process.
package servertest

import (
	"context"
	"github.com/berth-ml/berth/internal/testenv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/internal/server"
)

// Server is a server running on a loopback port until its test ends.
type Server struct {
	*server.Server
	URL   string // http://127.0.0.1:PORT
	Token string // the owner token the server wrote at first start (or adopted from BERTH_OWNER_TOKEN)
	Log   *Log   // the server's log
}

// Start runs a server with cfg; its log goes to Server.Log (cfg.Logger is
// replaced). The server stops, and Start's caller waits for it, when the
// test ends.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	log := &Log{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
	if err != nil && cfg.Getenv != nil && cfg.Getenv(server.EnvOwnerToken) != "" {
		tok, err = []byte(cfg.Getenv(server.EnvOwnerToken)), nil // adopted, no file
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Server: srv, URL: "http://" + ln.Addr().String(), Token: strings.TrimSpace(string(tok)), Log: log}
}

// Log collects a server's log so tests can search it while it runs.
type Log = testenv.Buffer
