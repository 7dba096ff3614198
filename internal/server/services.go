package server

import (
	"io"
	"net/http"
	"strconv"

	"github.com/berth-ml/berth/api"
)

func (s *Server) listServices(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
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

func (s *Server) deployService(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	var req api.ServiceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	op, err := s.services.Deploy(r.Context(), ws, &req)
	if err != nil {
		return err
	}
	accepted(w, op)
	return nil
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	sv, err := s.services.Get(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sv.Service)
	return nil
}

func (s *Server) deleteService(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	op, err := s.services.Delete(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	accepted(w, op)
	return nil
}

func (s *Server) serviceKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	k, err := s.services.Keys(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	s.log.Info("service keys read", "service", r.PathValue("service"), "workspace", ws.Name, "token", p.token.ID)
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) regenServiceKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
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

func (s *Server) serviceToken(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	t, err := s.services.Token(r.Context(), ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) updateService(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	var ch api.ServiceSpec
	if err := decode(r, &ch); err != nil {
		return err
	}
	op, err := s.services.Update(r.Context(), ws, r.PathValue("service"), &ch)
	if err != nil {
		return err
	}
	accepted(w, op)
	return nil
}

func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	tail, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	out, err := s.services.Logs(r.Context(), ws, r.PathValue("service"), r.URL.Query().Get("replica"), tail)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.WriteString(w, out)
	return err
}
