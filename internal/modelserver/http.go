package modelserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 100 << 20

// v2 tensor names used by the Open Inference Protocol endpoints.
const (
	v2InputName = "input-0"
	v2ProbName  = "probabilities"
	v2LabelName = "label"
)

// ScoreRequest is the body of POST /score.
type ScoreRequest struct {
	Data [][]float64 `json:"data"`
}

// ScoreResponse is the reply to POST /score.
type ScoreResponse struct {
	Predictions   []string    `json:"predictions"`
	Probabilities [][]float64 `json:"probabilities"`
}

// V2Tensor is an Open Inference Protocol v2 input or output tensor.
type V2Tensor struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	Data     any    `json:"data"`
}

// V2InferRequest is the body of POST /v2/models/{name}/infer.
type V2InferRequest struct {
	ID     string     `json:"id,omitempty"`
	Inputs []V2Tensor `json:"inputs"`
}

// V2InferResponse is the reply to POST /v2/models/{name}/infer.
type V2InferResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Outputs      []V2Tensor `json:"outputs"`
}

type v2TensorMeta struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// V2ModelMetadata is the reply to GET /v2/models/{name}.
type V2ModelMetadata struct {
	Name     string         `json:"name"`
	Versions []string       `json:"versions"`
	Platform string         `json:"platform"`
	Inputs   []v2TensorMeta `json:"inputs"`
	Outputs  []v2TensorMeta `json:"outputs"`
}

// Handler serves m: POST /score (berth-fe contract), the Open Inference
// Protocol v2 endpoints under /v2, GET /swagger.json, /healthz and /readyz.
func Handler(m *Model) http.Handler {
	s := &server{m: m}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /score", s.score)
	mux.HandleFunc("GET /swagger.json", s.swagger)
	mux.HandleFunc("GET /healthz", okText)
	mux.HandleFunc("GET /readyz", okText)
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "berth-modelserver", "version": "1", "extensions": []string{}})
	})
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	})
	mux.HandleFunc("GET /v2/models/{name}", s.v2Model(s.v2Metadata))
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.v2Model(s.v2Metadata))
	mux.HandleFunc("GET /v2/models/{name}/ready", s.v2Model(s.v2Ready))
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.v2Model(s.v2Ready))
	mux.HandleFunc("POST /v2/models/{name}/infer", s.v2Model(s.v2Infer))
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.v2Model(s.v2Infer))
	return mux
}

type server struct{ m *Model }

func okText(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// decodeBody decodes a JSON body into v, writing a 400/413 on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		return true
	}
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", tooBig.Limit)
		return false
	}
	writeError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
	return false
}

func (s *server) score(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Data *[][]float64 `json:"data"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Data == nil {
		writeError(w, http.StatusBadRequest, `missing "data": want {"data": [[%s], ...]}`, strings.Join(s.m.meta.Features, ", "))
		return
	}
	if len(*req.Data) == 0 {
		writeError(w, http.StatusBadRequest, `"data" has no rows`)
		return
	}
	probs, labels, err := s.m.Predict(*req.Data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "data: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, ScoreResponse{Predictions: labels, Probabilities: probs})
}

// v2Model serves h when the {name} and optional {version} path values
// match the served model, and a 404 when they do not.
func (s *server) v2Model(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("name"); name != s.m.meta.Name {
			writeError(w, http.StatusNotFound, "model %q not found (this server serves %q)", name, s.m.meta.Name)
			return
		}
		if v := r.PathValue("version"); v != "" && v != s.m.meta.Version {
			writeError(w, http.StatusNotFound, "model %q has no version %q (have %q)", s.m.meta.Name, v, s.m.meta.Version)
			return
		}
		h(w, r)
	}
}

func (s *server) v2Metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, V2ModelMetadata{
		Name:     s.m.meta.Name,
		Versions: []string{s.m.meta.Version},
		Platform: "xgboost",
		Inputs:   []v2TensorMeta{{Name: v2InputName, Datatype: "FP64", Shape: []int{-1, s.m.NumFeatures()}}},
		Outputs: []v2TensorMeta{
			{Name: v2ProbName, Datatype: "FP64", Shape: []int{-1, len(s.m.meta.Classes)}},
			{Name: v2LabelName, Datatype: "BYTES", Shape: []int{-1}},
		},
	})
}

func (s *server) v2Ready(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": s.m.meta.Name, "ready": true})
}

func (s *server) v2Infer(w http.ResponseWriter, r *http.Request) {
	var req V2InferRequest
	if !decodeBody(w, r, &req) {
		return
	}
	rows, err := s.v2Rows(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	probs, labels, err := s.m.Predict(rows)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	flat := slices.Concat(probs...)
	writeJSON(w, http.StatusOK, V2InferResponse{
		ModelName:    s.m.meta.Name,
		ModelVersion: s.m.meta.Version,
		ID:           req.ID,
		Outputs: []V2Tensor{
			{Name: v2ProbName, Shape: []int{len(rows), len(s.m.meta.Classes)}, Datatype: "FP64", Data: flat},
			{Name: v2LabelName, Shape: []int{len(rows)}, Datatype: "BYTES", Data: labels},
		},
	})
}

// v2Rows turns the single v2 input tensor into rows, checking its shape,
// datatype and data.
func (s *server) v2Rows(req V2InferRequest) ([][]float64, error) {
	if len(req.Inputs) != 1 {
		return nil, fmt.Errorf("want exactly 1 input tensor (%q), got %d", v2InputName, len(req.Inputs))
	}
	in := req.Inputs[0]
	switch in.Datatype {
	case "FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
	default:
		return nil, fmt.Errorf("input %q: datatype %q is not numeric (want FP64 or FP32)", in.Name, in.Datatype)
	}
	nf := s.m.NumFeatures()
	if len(in.Shape) != 2 || in.Shape[0] < 1 || in.Shape[1] != nf {
		return nil, fmt.Errorf("input %q: shape %v, want [N, %d] with N >= 1", in.Name, in.Shape, nf)
	}
	var flat []float64
	if err := flatten(in.Data, &flat); err != nil {
		return nil, fmt.Errorf("input %q: data: %v", in.Name, err)
	}
	if n := in.Shape[0] * nf; len(flat) != n {
		return nil, fmt.Errorf("input %q: shape %v needs %d values, data has %d", in.Name, in.Shape, n, len(flat))
	}
	rows := make([][]float64, in.Shape[0])
	for i := range rows {
		rows[i] = flat[i*nf : (i+1)*nf : (i+1)*nf]
	}
	return rows, nil
}

// flatten appends the numbers in a flat or nested (row-major) JSON list.
func flatten(v any, out *[]float64) error {
	switch t := v.(type) {
	case float64:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			if err := flatten(e, out); err != nil {
				return err
			}
		}
	case nil:
		return errors.New("missing")
	default:
		return fmt.Errorf("want a list of numbers, found %T", v)
	}
	return nil
}

func (s *server) swagger(w http.ResponseWriter, _ *http.Request) {
	nf := s.m.NumFeatures()
	example := make([]float64, nf)
	row := map[string]any{"type": "array", "items": map[string]any{"type": "number"}, "minItems": nf, "maxItems": nf,
		"description": "one row: " + strings.Join(s.m.meta.Features, ", ")}
	errSchema := map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "string"}}}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "Berth model server: " + s.m.meta.Name,
			"version": s.m.meta.Version,
		},
		"paths": map[string]any{
			"/score": map[string]any{
				"post": map[string]any{
					"summary": "Score rows with the model",
					"requestBody": map[string]any{
						"required": true,
						"content": map[string]any{"application/json": map[string]any{
							"schema": map[string]any{
								"type":       "object",
								"required":   []string{"data"},
								"properties": map[string]any{"data": map[string]any{"type": "array", "minItems": 1, "items": row}},
							},
							"example": map[string]any{"data": [][]float64{example}},
						}},
					},
					"responses": map[string]any{
						"200": map[string]any{
							"description": "predicted class and class probabilities per row",
							"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
								"type": "object",
								"properties": map[string]any{
									"predictions": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": s.m.meta.Classes}},
									"probabilities": map[string]any{"type": "array", "items": map[string]any{
										"type": "array", "items": map[string]any{"type": "number"},
										"description": "probabilities in class order: " + strings.Join(s.m.meta.Classes, ", "),
									}},
								},
							}}},
						},
						"400": map[string]any{"description": "invalid input", "content": map[string]any{"application/json": map[string]any{"schema": errSchema}}},
						"413": map[string]any{"description": "body too large", "content": map[string]any{"application/json": map[string]any{"schema": errSchema}}},
					},
				},
			},
		},
	}
	writeJSON(w, http.StatusOK, doc)
}
