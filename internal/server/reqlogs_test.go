package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/tests3"
)

// The request log tests use a real MinIO (hack/minio.sh), started once
// for the package.
func TestMain(m *testing.M) {
	tests3.Main(m)
}

// TestRequestLogsFiledAndReadBack: batches filed in the artifact store (a
// folder, which appends to each hour's file, and S3, which writes a part
// per batch) read back in order, from ?since= on, only those filed under
// the name asked for and in its workspace; a batch with a bad entry files
// nothing.
func TestRequestLogsFiledAndReadBack(t *testing.T) {
	stores := map[string]func(t *testing.T) artifact.Store{
		"folder": func(t *testing.T) artifact.Store { return artifact.Dir{Root: t.TempDir()} },
		"s3": func(t *testing.T) artifact.Store {
			srv := tests3.Start(t)
			cfg, err := artifact.ParseS3URL(srv.URL(srv.Bucket(t), "berth"), srv.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			s3, err := artifact.OpenS3(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return s3
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := &Server{artifacts: open(t), log: slog.New(slog.DiscardHandler)}
			ctx := context.Background()
			c := &store.Compute{WorkspaceID: "ws-1"}
			now := time.Now().UTC()
			entry := func(id, endpoint string, at time.Time) reqlog.Entry {
				return reqlog.Entry{ID: id, Endpoint: endpoint, Service: endpoint, Time: at, Status: 200, Request: `{"data":[[1]]}`, Response: "[0]"}
			}
			batches := [][]reqlog.Entry{
				{entry("old", "iris", now.Add(-3*time.Hour)), entry("a1", "iris", now.Add(-90*time.Minute))},
				{entry("a2", "iris", now.Add(-time.Minute)), entry("other", "wine", now.Add(-time.Minute))},
				{entry("a3", "iris", now)},
			}
			for _, b := range batches {
				if err := s.storeRequestLogs(ctx, c, b); err != nil {
					t.Fatal(err)
				}
			}
			// Another workspace's namesake is not read.
			if err := s.storeRequestLogs(ctx, &store.Compute{WorkspaceID: "ws-2"}, []reqlog.Entry{entry("ws2", "iris", now)}); err != nil {
				t.Fatal(err)
			}
			// A bad entry: nothing of its batch is filed.
			for _, bad := range []reqlog.Entry{entry("x", "../escape", now), entry("x", "", now), entry("x", "iris", time.Time{})} {
				if err := s.storeRequestLogs(ctx, c, []reqlog.Entry{entry("lost", "iris", now), bad}); err == nil {
					t.Errorf("entry %+v was filed", bad)
				}
			}
			read := func(since string) ([]string, int) {
				w := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/?since="+since, nil)
				if err := s.writeRequestLogs(w, r, "ws-1", "iris"); err != nil {
					return []string{err.Error()}, 0
				}
				got, err := reqlog.ReadJSONLines(strings.NewReader(w.Body.String()))
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/jsonl" {
					t.Errorf("Content-Type %q", ct)
				}
				return ids, w.Code
			}
			if ids, code := read("2h"); strings.Join(ids, ",") != "a1,a2,a3" || code != http.StatusOK {
				t.Errorf("since 2h: %v (%d), want a1,a2,a3", ids, code)
			}
			if ids, _ := read("5m"); strings.Join(ids, ",") != "a2,a3" {
				t.Errorf("since 5m: %v, want a2,a3", ids)
			}
			if ids, _ := read("24h"); strings.Join(ids, ",") != "old,a1,a2,a3" {
				t.Errorf("since 24h: %v, want old,a1,a2,a3", ids)
			}
			if ids, _ := read("800h"); len(ids) != 1 || !strings.Contains(ids[0], "up to 720h") {
				t.Errorf("since 800h: %v", ids)
			}
		})
	}
}
