package server

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/naming"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
)

// MaxModelBytes bounds one model upload.
const MaxModelBytes = 4 << 30

// registerModel streams the body into the artifact store and records the
// next version of the model. Metadata comes in the query string, so the
// artifact itself is never buffered.
func (s *Server) registerModel(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	q := r.URL.Query()
	name, fileName, format := q.Get("name"), q.Get("fileName"), cmp.Or(q.Get("format"), "file")
	details := naming.Model(name)
	if format != "file" && format != "tar.gz" {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "format", Message: fmt.Sprintf("format %q is not valid: use file or tar.gz", format)})
	}
	if msg := fileNameProblem(fileName); msg != "" {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "fileName", Message: msg})
	}
	desc := q.Get("description")
	if len(desc) > 1000 {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "description", Message: "description must be at most 1000 characters"})
	}
	tags := map[string]string{}
	for _, t := range q["tag"] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "tag", Message: fmt.Sprintf("tag %q must look like key=value", t)})
			continue
		}
		tags[k] = v
	}
	if r.ContentLength == 0 {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "body", Message: "the model artifact (the request body) is empty"})
	}
	if r.ContentLength > MaxModelBytes {
		return problem.New(http.StatusRequestEntityTooLarge, api.CodePayloadTooLarge, "the model is larger than %d bytes", MaxModelBytes)
	}
	if len(details) > 0 {
		return problem.Validation("", details)
	}
	m := &store.Model{WorkspaceID: ws.ID, Model: api.Model{ID: uuid.NewString(), Name: name, Workspace: ws.Name,
		Description: desc, Tags: tags, Format: format, FileName: fileName}}
	m.ArtifactKey = ws.ID + "/" + m.ID
	// The artifact is checked as it streams into the store: an archive
	// that is broken, or would unpack beyond the limits, is refused and
	// not stored.
	body := artifact.Checked(http.MaxBytesReader(w, r.Body, MaxModelBytes), format, fileName, s.cfg.ModelLimits)
	defer body.Close()
	n, sum, err := s.artifacts.Put(r.Context(), m.ArtifactKey, body)
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return problem.New(http.StatusRequestEntityTooLarge, api.CodePayloadTooLarge, "the model is larger than %d bytes", MaxModelBytes)
		}
		if le, ok := errors.AsType[*artifact.LimitError](err); ok {
			return problem.New(http.StatusRequestEntityTooLarge, api.CodeArtifactTooLarge, "%s; nothing was stored", le)
		}
		if ie, ok := errors.AsType[*artifact.InvalidError](err); ok {
			return problem.Validation("", []api.ErrorDetail{{Code: api.CodeInvalidArtifact, Target: "body", Message: ie.Error() + "; nothing was stored"}})
		}
		if errors.Is(err, artifact.ErrFull) {
			s.log.Warn("a model upload found the artifact store full", "store", s.artifacts, "err", err)
			return problem.New(http.StatusInsufficientStorage, api.CodeArtifactStoreFull, "nothing was stored: %s. Free space in the store, then register again", strings.TrimSuffix(err.Error(), "."))
		}
		return err
	}
	if n == 0 {
		s.artifacts.Delete(r.Context(), m.ArtifactKey)
		return problem.Validation("", []api.ErrorDetail{{Code: api.CodeInvalidValue, Target: "body", Message: "the model artifact (the request body) is empty"}})
	}
	m.Size, m.SHA256 = n, sum
	if err := s.store.CreateModelVersion(r.Context(), m); err != nil {
		s.artifacts.Delete(r.Context(), m.ArtifactKey)
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/workspaces/%s/models/%s?version=%d", ws.Name, m.Name, m.Version))
	return writeJSON(w, http.StatusCreated, m.Model)
}

// fileNameProblem says what is wrong with an artifact's file name ("" if
// nothing): replicas create a file of that name.
func fileNameProblem(name string) string {
	const rule = "must be a plain file name (no folders, no control characters), at most 255 bytes"
	switch {
	case name == "":
		return "fileName is required: the name of the model's file (or folder)"
	case !utf8.ValidString(name):
		return "fileName is not valid UTF-8; it " + rule
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Sprintf("fileName %s contains a control character; it %s", strconv.Quote(problem.Shorten(name)), rule)
	case strings.ContainsAny(name, `/\`) || name != path.Base(name) || name == "." || name == "..":
		return fmt.Sprintf("fileName %s %s", strconv.Quote(problem.Shorten(name)), rule)
	case len(name) > 255:
		return fmt.Sprintf("fileName %s is %d bytes long; it %s", strconv.Quote(problem.Shorten(name)), len(name), rule)
	}
	return ""
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request, p *principal) error {
	ms, err := s.store.ListModels(r.Context(), p.ws.ID, r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.ModelList{Value: ms})
}

// model loads {model} at ?version= or {version} (latest when absent).
func (s *Server) model(r *http.Request, ws *api.Workspace) (*store.Model, error) {
	name := r.PathValue("model")
	vs := cmp.Or(r.PathValue("version"), r.URL.Query().Get("version"))
	version := 0
	if vs != "" && vs != "latest" {
		var err error
		if version, err = strconv.Atoi(vs); err != nil || version < 1 {
			return nil, problem.New(http.StatusBadRequest, api.CodeBadRequest, "version %q must be a positive number or latest", vs)
		}
	}
	m, err := s.store.GetModel(r.Context(), ws.ID, name, version)
	if errors.Is(err, store.ErrNotFound) {
		if version > 0 {
			return nil, problem.NotFound("model %q has no version %d in workspace %q", name, version, ws.Name)
		}
		return nil, problem.NotFound("model %q not found in workspace %q", name, ws.Name)
	}
	return m, err
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.model(r, p.ws)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.Model)
}

func (s *Server) downloadModel(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.model(r, p.ws)
	if err != nil {
		return err
	}
	return s.sendArtifact(w, r, m)
}

// sendArtifact streams a model version's artifact with its checksum and
// format, so the receiver can verify and unpack it.
func (s *Server) sendArtifact(w http.ResponseWriter, r *http.Request, m *store.Model) error {
	f, err := s.artifacts.Get(r.Context(), m.ArtifactKey)
	if errors.Is(err, artifact.ErrNotFound) {
		return problem.NotFound("the artifact of model %s version %d is missing from the artifact store", m.Name, m.Version)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", downloadName(m)))
	w.Header().Set("X-Berth-Sha256", m.SHA256)
	w.Header().Set("X-Berth-Format", m.Format)
	// The limits replicas unpack under (berth model-init).
	s.cfg.ModelLimits.SetHeader(w.Header())
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, f)
	return err
}

// deliverModel serves a model to a replica's init container. It has no
// Berth token: the service manager checks the pod's own token.
func (s *Server) deliverModel(w http.ResponseWriter, r *http.Request, _ *principal) error {
	version, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || version < 1 {
		return problem.New(http.StatusBadRequest, api.CodeValidation, "version %q is not a positive number", r.PathValue("version"))
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	m, err := s.services.AuthorizeDelivery(r.Context(), r.PathValue("service"), strings.TrimSpace(token), r.PathValue("model"), version)
	if err != nil {
		return err
	}
	return s.sendArtifact(w, r, m)
}

func downloadName(m *store.Model) string {
	if m.Format == "tar.gz" {
		return fmt.Sprintf("%s-%d.tar.gz", m.Name, m.Version)
	}
	return m.FileName
}

func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.model(r, p.ws)
	if err != nil {
		return err
	}
	svs, err := s.store.ListServices(r.Context(), m.WorkspaceID, "")
	if err != nil {
		return err
	}
	ref := fmt.Sprintf("%s:%d", m.Name, m.Version)
	var users []string
	for _, sv := range svs {
		for _, used := range sv.Models {
			if strings.EqualFold(used, ref) {
				users = append(users, sv.Name)
			}
		}
	}
	if len(users) > 0 {
		return problem.Conflict("ModelInUse", "model %s version %d is used by service(s) %s; update or delete them first", m.Name, m.Version, strings.Join(users, ", "))
	}
	if err := s.store.DeleteModel(r.Context(), m.ID); err != nil {
		return err
	}
	s.artifacts.Delete(r.Context(), m.ArtifactKey)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
