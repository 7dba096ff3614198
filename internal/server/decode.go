package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

// maxBody bounds API request bodies (certificates and kubeconfigs fit easily).
const maxBody = 1 << 20

// decode reads a JSON body strictly: one object, known fields only, right
// types, within maxBody. Every failure is a 4xx naming what is wrong.
func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	data, err := io.ReadAll(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return problem.New(http.StatusRequestEntityTooLarge, api.CodePayloadTooLarge, "the request body is larger than %d bytes", maxBody)
		}
		return problem.New(http.StatusBadRequest, api.CodeBadRequest, "cannot read the request body: %v", err)
	}
	return decodeBytes(data, v)
}

// decodeBytes is decode's parser, separate for fuzzing.
func decodeBytes(data []byte, v any) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return problem.New(http.StatusBadRequest, api.CodeInvalidJSON, "the request needs a JSON body")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.New(http.StatusBadRequest, api.CodeInvalidJSON, "%s", describeJSONError(err))
	}
	if dec.More() {
		return problem.New(http.StatusBadRequest, api.CodeInvalidJSON, "the request body must hold a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, api.CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("the body is not valid JSON (at byte %d): %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("the body must be a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the body is not valid JSON: it ends too early"
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s", rest)
	}
	return "the body is not valid JSON: " + strings.TrimPrefix(msg, "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return k
}
