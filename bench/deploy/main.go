// Command deploy measures the time from `berth service deploy` to the
// first successful score over HTTPS on the local compute (median of N).
//
//	go run ./bench/deploy [-n 5]
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 5, "deployments")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	tmp, err := os.MkdirTemp("", "berth-deploy-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/berth").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(tmp, "data")
	srv := exec.Command(bin, "server", "--data-dir", data, "--listen", addr, "--log-level", "warn")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Process.Kill()
	env := append(os.Environ(), "BERTH_SERVER=http://"+addr, "BERTH_DATA_DIR="+data, "BERTH_WORKSPACE=bench")
	berth := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("berth %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String(), nil
	}
	for i := 0; ; i++ {
		if _, err := berth("workspace", "create", "-n", "bench"); err == nil {
			break
		} else if i > 100 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := berth("compute", "create", "local", "-n", "laptop"); err != nil {
		return err
	}
	if _, err := berth("model", "register", "-n", "iris", "--path", "models/iris"); err != nil {
		return err
	}
	certJSON, err := berth("compute", "get-certificate", "-n", "laptop", "-o", "json")
	if err != nil {
		return err
	}
	var cert struct{ CaPem string }
	json.Unmarshal([]byte(certJSON), &cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert.CaPem))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var times []time.Duration
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d", i)
		t0 := time.Now()
		out, err := berth("service", "deploy", "-n", name, "--compute", "laptop", "--model", "iris", "--replicas", "1",
			"--command", bin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
			"--command", "--listen", "--command", "127.0.0.1:$PORT", "-o", "json")
		if err != nil {
			return err
		}
		var sv struct{ ScoringUri string }
		json.Unmarshal([]byte(out), &sv)
		keysJSON, err := berth("service", "keys", "-n", name, "-o", "json")
		if err != nil {
			return err
		}
		var keys struct{ PrimaryKey string }
		json.Unmarshal([]byte(keysJSON), &keys)
		for {
			req, _ := http.NewRequest("POST", sv.ScoringUri, strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
			req.Header.Set("Authorization", "Bearer "+keys.PrimaryKey)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(t0) > time.Minute {
				return fmt.Errorf("%s never scored", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		times = append(times, time.Since(t0))
		fmt.Fprintf(os.Stderr, "deployment %d: first score after %s\n", i+1, times[i].Round(time.Millisecond))
		if _, err := berth("service", "delete", "-n", name); err != nil {
			return err
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("local compute: service deploy to first successful score over HTTPS: median %s of %d\n", times[len(times)/2].Round(time.Millisecond), n)
	return nil
}
