package cli

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDebugRedactsSecrets: --debug shows requests and answers, never a
// token, key, secret or kubeconfig, at any depth.
func TestDebugRedactsSecrets(t *testing.T) {
	secrets := []string{"bth_owner", "pk-1", "sk-2", "jwt-3", "kubeconfig-4", "tsig-5", "bth_new"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/keys":
			io.WriteString(w, `{"primaryKey":"pk-1","secondaryKey":"sk-2","nested":[{"accessToken":"jwt-3"}],"name":"iris"}`)
		case "/computes/c/credentials":
			io.WriteString(w, `{"value":"kubeconfig-4"}`)
		default:
			io.WriteString(w, `{"token":"bth_new","id":"tok-1"}`)
		}
	}))
	defer srv.Close()
	var log bytes.Buffer
	hc := (&app{debug: true, stderr: &log}).httpClient(nil)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/keys", ""},
		{"GET", "/computes/c/credentials", ""},
		{"POST", "/tokens", `{"role":"owner","settings":{"dns01":{"tsigSecret":"tsig-5"}}}`},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer bth_owner")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) == 0 {
			t.Fatalf("%s: --debug ate the answer", c.path)
		}
	}
	out := log.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("--debug printed %q:\n%s", s, out)
		}
	}
	for _, want := range []string{"> GET " + srv.URL + "/keys", "Authorization: Bearer [redacted]", `"name":"iris"`, `"primaryKey":"[redacted]"`,
		`{"accessToken":"[redacted]"}`, `"role":"owner"`, `"tsigSecret":"[redacted]"`, `"id":"tok-1"`, "< HTTP/1.1 200 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("--debug lacks %q:\n%s", want, out)
		}
	}
}
