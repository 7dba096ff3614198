package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
)

// Request logs (docs/endpoints.md "Request logging") are filed in the
// artifact store by the hour, under the name of the endpoint (a plain
// service's own name) they were sent to:
//
//	request-logs/<workspace-id>/<name>/<yyyy-mm-dd>/<hh>.jsonl           (a folder: appended to)
//	request-logs/<workspace-id>/<name>/<yyyy-mm-dd>/<hh>/<part>.jsonl    (S3: a part per batch)
//
// The parts' names start with the time they were written (nanoseconds,
// 19 digits), so reading the keys in order reads an hour in order.
const requestLogPrefix = "request-logs"

// logName is a name logs are filed under: a service's or an endpoint's
// (or an endpoint version's service, E--V).
var logName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// requestLogsOf is the prefix of the logs filed under name.
func requestLogsOf(workspaceID, name string) string {
	return requestLogPrefix + "/" + workspaceID + "/" + name
}

// storeRequestLogs files a batch a front end of compute c sent: all of it,
// or nothing when an entry is not valid.
func (s *Server) storeRequestLogs(ctx context.Context, c *store.Compute, entries []reqlog.Entry) error {
	var order []string
	hours := map[string][]reqlog.Entry{}
	for i, e := range entries {
		if !logName.MatchString(e.Endpoint) || e.Time.IsZero() {
			return problem.New(http.StatusBadRequest, api.CodeValidation, "request log entry %d: it needs a time and an endpoint (a service or endpoint name), not %q", i+1, e.Endpoint)
		}
		key := requestLogsOf(c.WorkspaceID, e.Endpoint) + e.Time.UTC().Format("/2006-01-02/15")
		if _, ok := hours[key]; !ok {
			order = append(order, key)
		}
		hours[key] = append(hours[key], e)
	}
	for _, key := range order {
		data := reqlog.JSONLines(hours[key])
		if ap, ok := s.artifacts.(artifact.Appender); ok {
			if err := ap.Append(ctx, key+".jsonl", data); err != nil {
				return err
			}
			continue
		}
		var tag [4]byte
		rand.Read(tag[:])
		part := fmt.Sprintf("%s/%019d-%s.jsonl", key, time.Now().UnixNano(), hex.EncodeToString(tag[:]))
		if _, _, err := s.artifacts.Put(ctx, part, bytes.NewReader(data)); err != nil {
			return err
		}
	}
	return nil
}

// reportRequestLogs takes a batch of request logs from a cluster's front
// end, JSON Lines, authenticated as its metrics reports are.
func (s *Server) reportRequestLogs(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return s.frontendReport(w, r, 64<<20, func(c *store.Compute, _ string, body io.Reader) error {
		entries, err := reqlog.ReadJSONLines(body)
		if err != nil {
			return problem.New(http.StatusBadRequest, api.CodeValidation, "%v", err)
		}
		return s.storeRequestLogs(r.Context(), c, entries)
	})
}

// maxLogsSince is how far back request logs can be read at once.
const maxLogsSince = 30 * 24 * time.Hour

var logsSinceParam = queryParam{Name: "since", Type: "string", Doc: "how far back, as a duration (1s to 720h; default 1h)"}

// writeRequestLogs answers the request logs filed under name in the
// last ?since= (default an hour), as JSON Lines, oldest first. The
// endpoints' read-back calls it with the endpoint's name.
func (s *Server) writeRequestLogs(w http.ResponseWriter, r *http.Request, workspaceID, name string) error {
	since := time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxLogsSince {
			return problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "since",
				"since %q: give a duration up to 720h (30 days), like 15m or 6h", v)})
		}
		since = d
	}
	now := time.Now().UTC()
	from := now.Add(-since)
	prefix := requestLogsOf(workspaceID, name)
	// The days of the window only, not all a service ever logged.
	var keys []string
	for day := from.Truncate(24 * time.Hour); !day.After(now); day = day.Add(24 * time.Hour) {
		k, err := s.artifacts.List(r.Context(), prefix+day.Format("/2006-01-02"))
		if err != nil {
			return err
		}
		keys = append(keys, k...)
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.WriteHeader(http.StatusOK)
	for _, key := range keys {
		date, rest, _ := strings.Cut(strings.TrimPrefix(key, prefix+"/"), "/")
		hour, _, _ := strings.Cut(strings.TrimSuffix(rest, ".jsonl"), "/")
		at, err := time.Parse("2006-01-02/15", date+"/"+hour)
		if err != nil || at.Add(time.Hour).Before(from) {
			continue
		}
		if err := copyEntriesSince(r.Context(), s.artifacts, key, from, w); err != nil {
			s.log.Warn("reading request logs", "key", key, "err", err)
			return nil // the answer has begun: it ends short
		}
	}
	return nil
}

// copyEntriesSince copies the lines of key whose entry is from from on.
func copyEntriesSince(ctx context.Context, st artifact.Store, key string, from time.Time, w io.Writer) error {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Time.Before(from) {
			continue
		}
		if _, err := w.Write(append(sc.Bytes(), '\n')); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (s *Server) serviceRequestLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	sv, err := s.services.Get(r.Context(), p.ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	return s.writeRequestLogs(w, r, p.ws.ID, sv.Name)
}

func (s *Server) endpointRequestLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	e, err := s.endpoints.Get(r.Context(), p.ws, r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	return s.writeRequestLogs(w, r, p.ws.ID, e.Name)
}
