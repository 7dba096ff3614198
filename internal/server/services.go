package server

import (
	"io"
	"net/http"
	"strconv"

	"github.com/berth-ml/berth/api"
)

func (s *Server) listServices(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	svs, err := s.store.ListServices(r.Context(), ws.ID, "")
	if err != nil {
		return err
	}
	out := api.ServiceList{Value: make([]api.Service, 0, len(svs))}
	for _, sv := range svs {
		out.Value = append(out.Value, sv.Service)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) serviceKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	k, err := s.services.Keys(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	s.log.Info("service keys read", "service", r.PathValue("service"), "workspace", ws.Name, "token", p.token.ID)
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) regenServiceKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	var req api.RegenKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := s.services.RegenKey(r.Context(), ws, r.PathValue("service"), &req)
	if err != nil {
		return err
	}
	s.log.Info("service key regenerated", "service", r.PathValue("service"), "key", req.Key, "token", p.token.ID)
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	tail, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	out, err := s.services.Logs(r.Context(), ws, r.PathValue("service"), r.URL.Query().Get("replica"), tail)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.WriteString(w, out)
	return err
}
