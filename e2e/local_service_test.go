package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv"
)

// TestLocalService: the iris model deployed on the local compute runs as
// a child process behind the local front end; scoring over HTTPS with the
// key gives the right prediction; an update rolls with no failed
// request; delete stops it.
func TestLocalService(t *testing.T) {
	p, env := teamEnv(t)
	r := berth(t, env, "compute", "create", "local", "-n", "laptop", "-o", "json")
	var c api.Compute
	json.Unmarshal([]byte(r.stdout), &c)
	// The model as a directory: metadata.json and model.bin.
	dir := filepath.Join(t.TempDir(), "iris")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"metadata.json", "model.bin"} {
		b, _ := os.ReadFile(filepath.Join("..", "models", "iris", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	if r := berth(t, env, "model", "register", "-n", "iris", "--path", dir); r.code != 0 {
		t.Fatalf("register: %+v", r)
	}
	r = berth(t, env, "service", "deploy", "-n", "iris", "--compute", "laptop", "--model", "iris",
		"--command", berthBin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT", "--replicas", "1", "-o", "json")
	var sv api.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sv) != nil || sv.State != api.ServiceHealthy || sv.ScoringURI != "https://"+c.Endpoint+"/api/v1/service/iris/score" {
		t.Fatalf("deploy: %+v\n%s\n%s", sv, r.stdout, r.stderr)
	}
	var keys api.ServiceKeys
	json.Unmarshal([]byte(berth(t, env, "service", "keys", "-n", "iris", "-o", "json").stdout), &keys)
	pool := localCAPool(t, env, "laptop")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	score := func(key string) (int, string) {
		return scoreVia(hc, sv.ScoringURI, key, `{"data":[[5.1,3.5,1.4,0.2]]}`)
	}
	if code, body := score(keys.PrimaryKey); code != 200 || !strings.Contains(body, `"predictions":["setosa"]`) {
		t.Fatalf("score: %d %s", code, body)
	}
	if code, _ := score(""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	if r := berth(t, env, "service", "logs", "-n", "iris", "--tail", "5"); r.code != 0 || !strings.Contains(r.stdout, "==> iris-g") || !strings.Contains(r.stdout, "serving model iris") {
		t.Fatalf("logs: %+v", r)
	}
	if r := berth(t, env, "model", "delete", "-n", "iris", "--version", "1"); r.code != 1 || !strings.Contains(r.stderr, "is used by service(s) iris") {
		t.Fatalf("deleting a model in use: %+v", r)
	}
	// Update under load: no request fails.
	stop := make(chan struct{})
	failed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				failed <- n
				return
			default:
			}
			if code, body := score(keys.PrimaryKey); code != 200 {
				n++
				t.Logf("during update: %d %s", code, body)
			}
		}
	}()
	if r := berth(t, env, "service", "update", "-n", "iris", "--env", "NOTE=v2"); r.code != 0 {
		t.Fatalf("update: %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if n := <-failed; n != 0 {
		t.Fatalf("%d requests failed during the update", n)
	}
	// The local compute needs a command, on update too.
	if r := berth(t, env, "service", "update", "-n", "iris", "--image", "example/iris:1"); r.code != 1 || !strings.Contains(r.stderr, "give --command") {
		t.Fatalf("update to an image on the local compute: %+v", r)
	}
	// Token auth: a token from the control plane scores; none or a forged one gets 401.
	r = berth(t, env, "service", "deploy", "-n", "tok", "--compute", "laptop", "--model", "iris", "--replicas", "1", "--auth", "token",
		"--command", berthBin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT", "-o", "json")
	var tokSvc api.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tokSvc) != nil {
		t.Fatalf("deploy token service: %+v", r)
	}
	var tok api.ServiceToken
	if r := berth(t, env, "service", "token", "-n", "tok", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &tok) != nil || tok.ExpiryOn.Before(time.Now()) {
		t.Fatalf("token: %+v", r)
	}
	scoreTok := func(bearer string) int {
		req, _ := http.NewRequest("POST", tokSvc.ScoringURI, strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := scoreTok(tok.AccessToken); code != 200 {
		t.Fatalf("with the token: %d", code)
	}
	if code := scoreTok(""); code != 401 {
		t.Fatalf("without a token: %d", code)
	}
	if code := scoreTok(tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"); code != 401 {
		t.Fatalf("with a forged token: %d", code)
	}
	if r := berth(t, env, "service", "keys", "-n", "tok"); r.code != 1 || !strings.Contains(r.stderr, "uses token auth, not keys") {
		t.Fatalf("keys of a token service: %+v", r)
	}
	berth(t, env, "service", "delete", "-n", "tok")

	// An autoscaled local service scales up under load, by the same autoscaler.
	r = berth(t, env, "service", "deploy", "-n", "auto", "--compute", "laptop", "--model", "iris",
		"--command", berthBin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT", "--autoscale-min", "1", "--autoscale-max", "3",
		"--max-queue-wait-ms", "5000", "--auth", "none", "-o", "json")
	var auto api.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &auto) != nil {
		t.Fatalf("deploy auto: %+v", r)
	}
	stopLoad := testenv.Load(8, func(int) {
		req, _ := http.NewRequest("POST", auto.ScoringURI, strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	eventually(t, 20*time.Second, "the local service scales up to 3 replicas under load", func() bool {
		logs, _ := filepath.Glob(filepath.Join(p.dataDir, "services", auto.ID, "*.log"))
		return len(logs) >= 3
	})
	stopLoad()
	berth(t, env, "service", "delete", "-n", "auto")

	if r := berth(t, env, "service", "delete", "-n", "iris"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := score(keys.PrimaryKey); code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted service still answers")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
