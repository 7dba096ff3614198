package imagetest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	"github.com/berth-ml/berth/internal/testenv/testcert"
)

// BenchmarkContainerStart measures, for Berth's image under podman, the
// time from `podman run` to the first successful readiness check of
// `berth frontend` (static routes, TLS from a mounted Secret-shaped folder)
// and `berth model-server` (the bundled model). It reports the median in
// ms/ready-median (the target is ≤ 1000); ns/op is the mean of the same
// runs. Run: go test -run '^$' -bench ContainerStart -benchtime 10x ./internal/imagetest
func BenchmarkContainerStart(b *testing.B) {
	image := Image(b)
	dir := b.TempDir()
	static := filepath.Join(dir, "static.json")
	os.WriteFile(static, []byte(`{"services":[],"certFile":"/etc/berth/tls/cert.pem","keyFile":"/etc/berth/tls/key.pem"}`), 0o644)
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o755)
	cert, key := testcert.SelfSigned(b, "bench.berth.test")
	os.WriteFile(filepath.Join(tlsDir, "cert.pem"), cert, 0o644)
	os.WriteFile(filepath.Join(tlsDir, "key.pem"), key, 0o644)
	for _, bc := range []struct {
		name  string
		args  func(ports []int) []string
		mount []string
		ready string
	}{
		{"frontend", func(ports []int) []string {
			return []string{"frontend", "--static", "/etc/berth/static.json", "--http", "127.0.0.1:" + strconv.Itoa(ports[0]),
				"--https", "127.0.0.1:" + strconv.Itoa(ports[1]), "--admin", "127.0.0.1:" + strconv.Itoa(ports[2]), "--log-format", "text"}
		}, []string{"--volume", static + ":/etc/berth/static.json:ro", "--volume", tlsDir + ":/etc/berth/tls:ro"}, "/readyz"},
		{"model-server", func(ports []int) []string {
			return []string{"model-server", "--listen", "127.0.0.1:" + strconv.Itoa(ports[0])}
		}, nil, "/readyz"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				ports, err := freeport.Ports(3)
				if err != nil {
					b.Fatal(err)
				}
				port := ports[0]
				name := fmt.Sprintf("berth-bench-%s-%d-%d", bc.name, os.Getpid(), i)
				args := append(append([]string{}, kubelet.PodmanFlags...), "run", "-d", "--name", name, "--network", "host",
					"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--label", kubelet.OwnerLabel+"="+strconv.Itoa(os.Getpid()))
				args = append(append(args, bc.mount...), image)
				args = append(args, bc.args(ports)...)
				start := time.Now()
				if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
					b.Fatalf("podman run: %v\n%s", err, out)
				}
				if err := waitHTTP("http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+bc.ready, 30*time.Second); err != nil {
					out, _ := exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "logs", name)...).CombinedOutput()
					b.Fatalf("%v\n%s", err, out)
				}
				times = append(times, time.Since(start))
				b.StopTimer()
				exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "rm", "--force", "--time", "0", name)...).Run()
				b.StartTimer()
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms/ready-median")
		})
	}
}

func waitHTTP(url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", url, timeout, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
