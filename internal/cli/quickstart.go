package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/modelserver"
	"github.com/spf13/cobra"
)

// Names quickstart uses.
const (
	DefaultWorkspace = "default"
	quickCompute     = "laptop"
	quickModel       = "iris"
	quickService     = "iris"
	quickSample      = `{"data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`
)

func (a *app) quickstartCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run Berth's main job on its embedded defaults: deploy the bundled model on this machine and score it",
		Long: `Run Berth's main job with nothing else installed.

It uses the Berth server at the configured address if one answers, or else
starts a control plane in this process (SQLite and the owner token in the data
directory). Then it creates the workspace "default", the local compute
"local" (this machine: the front end on a loopback port, TLS from a local CA),
registers the bundled iris classifier, deploys it as the service "iris",
sends a scoring request over HTTPS with the service key, and prints the
prediction and the curl command that repeats it. Each step is skipped when
its result already exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir := a.dataDir(dataDir)
			c, err := a.client()
			if err == nil {
				err = c.Healthy(ctx)
			}
			if err != nil {
				fmt.Fprintf(a.stderr, "Starting a local Berth control plane (data in %s)\n", dir)
				log := slog.New(slog.NewTextHandler(io.Discard, nil))
				addr, stop, serr := serveLocal(ctx, dir, log)
				if serr != nil {
					return serr
				}
				defer stop()
				tok, rerr := os.ReadFile(filepath.Join(dir, config.AdminTokenFile))
				if rerr != nil {
					return fmt.Errorf("read the owner token: %w (was this data directory made by another database?)", rerr)
				}
				if c, err = client.New(addr, string(trimNL(tok))); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stderr, "Using the Berth server at %s\n", c.Server())
			}
			return a.quickstart(ctx, c, dir)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (env BERTH_DATA_DIR; default ~/.berth/data)")
	return cmd
}

func (a *app) quickstart(ctx context.Context, c *client.Client, dir string) error {
	ws := a.workspace
	if ws == "" {
		ws = DefaultWorkspace
	}
	step := func(format string, args ...any) { fmt.Fprintf(a.stderr, "• "+format+"\n", args...) }
	if _, err := c.GetWorkspace(ctx, ws); errors.Is(err, client.ErrNotFound) {
		if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: ws}); err != nil {
			return err
		}
		step("Created workspace %q", ws)
	} else if err != nil {
		return err
	}
	comp, err := c.GetCompute(ctx, ws, quickCompute)
	if errors.Is(err, client.ErrNotFound) {
		op, err := c.CreateCompute(ctx, ws, api.ComputeRequest{Name: quickCompute, Type: api.ComputeLocal, Origin: api.OriginCreated})
		if err != nil {
			return err
		}
		if _, err := c.Wait(ctx, op.ID, client.WaitOptions{}); err != nil {
			return err
		}
		if comp, err = c.GetCompute(ctx, ws, quickCompute); err != nil {
			return err
		}
		step("Created the local compute %q: front end at https://%s", quickCompute, comp.Endpoint)
	} else if err != nil {
		return err
	}
	if _, err := c.GetModel(ctx, ws, quickModel, 0); errors.Is(err, client.ErrNotFound) {
		var buf bytes.Buffer
		if err := tarFS(modelserver.BuiltinFiles(), &buf); err != nil {
			return err
		}
		m, err := c.RegisterModel(ctx, ws, client.ModelUpload{Name: quickModel, FileName: "iris", Format: "tar.gz", Body: &buf, Size: int64(buf.Len()),
			Description: "XGBoost iris classifier bundled with Berth", Tags: map[string]string{"dataset": "iris", "framework": "xgboost"}})
		if err != nil {
			return err
		}
		step("Registered model %s version %d (the bundled XGBoost iris classifier)", m.Name, m.Version)
	} else if err != nil {
		return err
	}
	sv, err := c.GetService(ctx, ws, quickService)
	if errors.Is(err, client.ErrNotFound) {
		bin, err := stableExecutable(dir)
		if err != nil {
			return err
		}
		op, err := c.DeployService(ctx, ws, api.ServiceRequest{Name: quickService, ServiceSpec: api.ServiceSpec{
			Compute: quickCompute, Models: []string{quickModel}, Replicas: 1,
			Command: []string{bin, "model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT"}}})
		if err != nil {
			return err
		}
		if _, err := c.Wait(ctx, op.ID, client.WaitOptions{}); err != nil {
			return err
		}
		if sv, err = c.GetService(ctx, ws, quickService); err != nil {
			return err
		}
		step("Deployed service %q with key auth", quickService)
	} else if err != nil {
		return err
	}
	keys, err := c.ServiceKeys(ctx, ws, quickService)
	if err != nil {
		return err
	}
	cert, err := c.GetCertificate(ctx, ws, quickCompute, false)
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "local-ca.pem")
	if err := os.WriteFile(caFile, []byte(cert.CAPEM), 0o644); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert.CAPEM))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var body string
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, "POST", sv.ScoringURI, strings.NewReader(quickSample))
		req.Header.Set("Authorization", "Bearer "+keys.PrimaryKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = strings.TrimSpace(string(b))
				break
			}
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		if attempt >= 50 {
			return fmt.Errorf("scoring %s: %w", sv.ScoringURI, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(a.stdout, "Scored %s over HTTPS with the service key.\n", sv.ScoringURI)
	fmt.Fprintf(a.stdout, "Request:    %s\n", quickSample)
	fmt.Fprintf(a.stdout, "Prediction: %s\n\n", body)
	fmt.Fprintf(a.stdout, "Repeat it while a Berth server runs (`berth server` serves this data directory):\n")
	fmt.Fprintf(a.stdout, "  curl --cacert %s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n    -d '%s' %s\n",
		caFile, keys.PrimaryKey, quickSample, sv.ScoringURI)
	return nil
}

// stableExecutable copies this binary into the data dir, so a service's
// command keeps working after `go run` removes its temporary build.
func stableExecutable(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "bin", "berth")
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
