package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

func TestDecodeErrors(t *testing.T) {
	cases := map[string]string{
		``:                           "needs a JSON body",
		`{"name":`:                   "ends too early",
		`{"name": 5}`:                `field "name" must be a string, not number`,
		`{"name":"a","bogus":1}`:     `unknown field "bogus"`,
		`[1,2]`:                      "must be a JSON object",
		`{"name":"a"} {"name":"b"}`:  "single JSON object",
		`{"name":"a"} x`:             "single JSON object",
		`{"properties": {"a": "b"}}`: `unknown field "properties"`,
		`{"ssl": {"renew": "yes"}}`:  `field "ssl.renew" must be a boolean`,
		`{"name":"a",}`:              "not valid JSON",
		"\xff":                       "not valid JSON",
	}
	for body, want := range cases {
		var req api.ComputeRequest
		err := decodeBytes([]byte(body), &req)
		p, ok := problem.As(err)
		if !ok || p.Status != http.StatusBadRequest || !strings.Contains(p.Body.Message, want) {
			t.Errorf("decode %q: %v, want 400 containing %q", body, err, want)
		}
	}
}

// FuzzDecodeComputeRequest: no input makes the decoder panic or answer
// anything but success or a 4xx problem.
func FuzzDecodeComputeRequest(f *testing.F) {
	for _, s := range []string{`{"name":"a","type":"test","origin":"attached"}`, `{"settings":{"x":"y"}}`, `{`, `null`, `{"ssl":{}}`, `"x"`, `{"name":1e999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{&api.ComputeRequest{}, &api.WorkspaceCreateRequest{}, &api.TokenCreateRequest{}, &api.ComputeUpdateRequest{}, &api.ScaleRequest{}} {
			err := decodeBytes(data, v)
			if err == nil {
				continue
			}
			p, ok := problem.As(err)
			if !ok || p.Status < 400 || p.Status > 499 || p.Body.Message == "" {
				t.Fatalf("decode %q: %v is not a 4xx problem", data, err)
			}
		}
	})
}
