package server

import (
	"net/http"
	"strconv"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
)

func (s *Server) listServices(w http.ResponseWriter, r *http.Request, p *principal) error {
	svs, err := s.store.ListServices(r.Context(), p.ws.ID, "")
	if err != nil {
		return err
	}
	out := api.ServiceList{Value: make([]api.Service, 0, len(svs))}
	for _, sv := range svs {
		out.Value = append(out.Value, sv.Service)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) serviceKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	k, err := s.services.Keys(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	s.log.Info("service keys read", "service", r.PathValue("service"), "workspace", ws.Name, "token", p.token.ID)
	return writeJSON(w, http.StatusOK, k)
}

func (s *Server) regenServiceKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req api.RegenKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := s.services.RegenKey(r.Context(), p.ws, r.PathValue("service"), &req)
	if err != nil {
		return err
	}
	s.log.Info("service key regenerated", "service", r.PathValue("service"), "key", req.Key, "token", p.token.ID)
	return writeJSON(w, http.StatusOK, k)
}

func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	o := provider.LogOptions{Replica: q.Get("replica")}
	o.Tail, _ = strconv.Atoi(q.Get("tail"))
	var err error
	if o.Previous, err = boolQuery(r, "previous"); err != nil {
		return err
	}
	if o.Follow, err = boolQuery(r, "follow"); err != nil {
		return err
	}
	out := &textStream{w: w}
	if err := s.services.Logs(r.Context(), p.ws, r.PathValue("service"), o, out); err != nil && !out.started {
		return err
	}
	if !out.started {
		out.begin()
	}
	return nil
}

// textStream answers 200 with text as it is written, each write sent at
// once (a followed log); nothing is sent until the first write, so an
// error found before can still be the answer.
type textStream struct {
	w       http.ResponseWriter
	started bool
}

func (t *textStream) begin() {
	t.started = true
	t.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	t.w.Header().Set("X-Accel-Buffering", "no")
	t.w.WriteHeader(http.StatusOK)
}

func (t *textStream) Write(b []byte) (int, error) {
	if !t.started {
		t.begin()
	}
	n, err := t.w.Write(b)
	if f, ok := t.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// boolQuery reads a true/false query parameter (absent: false).
func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "true", "1":
		return true, nil
	case "", "false", "0":
		return false, nil
	default:
		return false, problem.New(http.StatusBadRequest, api.CodeBadRequest, "%s must be true or false (got %q)", name, v)
	}
}
