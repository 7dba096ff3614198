package frontend

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-ml/berth/internal/testenv"
)

// HTTP-01 answers: the key authorization for a known token, 404 otherwise,
// and only what the latest ConfigMap holds.
func TestACMEChallengeAnswers(t *testing.T) {
	f := New(nil)
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	get := func(method, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+ACMEPrefix+token, nil)
		return testenv.Send(http.DefaultClient, req)
	}
	if code, _ := get("GET", "tok1"); code != 404 {
		t.Fatalf("no challenges: %d", code)
	}
	f.SetACMEChallenges(map[string]string{"tok1": "tok1.thumb"})
	if code, body := get("GET", "tok1"); code != 200 || body != "tok1.thumb" {
		t.Fatalf("answer: %d %q", code, body)
	}
	if code, _ := get("GET", "tok2"); code != 404 {
		t.Fatalf("unknown token: %d", code)
	}
	if code, _ := get("POST", "tok1"); code != 404 {
		t.Fatalf("POST: %d", code)
	}
	f.SetACMEChallenges(map[string]string{})
	if code, _ := get("GET", "tok1"); code != 404 {
		t.Fatalf("after clean-up: %d", code)
	}
}
