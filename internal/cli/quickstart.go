package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/modelserver"
	"github.com/spf13/cobra"
)

// Names quickstart uses: its own workspace, so that on a server that
// already has work it touches nothing else.
const (
	quickWorkspace = "quickstart"
	quickCompute   = "laptop"
	quickModel     = "iris"
	quickService   = "iris"
	quickSample    = `{"data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`
)

func (a *app) quickstartCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run Berth's main job on its embedded defaults: deploy the bundled model on this machine and score it",
		Long: `Run Berth's main job with nothing else installed.

It uses the Berth server at the configured address if one answers, or else
starts a control plane in this process (SQLite and the owner token in the data
directory). It works in its own workspace, "quickstart", whatever -w or the
context say: it creates the local compute "laptop" there (this machine: the
front end on a loopback port, TLS from a local CA), registers the bundled iris
classifier, deploys that very version as the service "iris", sends a scoring
request over HTTPS with the service key, and prints the prediction and the curl
command that repeats it. Each step is skipped when its result already exists;
each wait says what it waits for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir := a.dataDir(dataDir)
			c, err := a.client()
			if err == nil {
				fmt.Fprintf(a.stderr, "Looking for a Berth server at %s\n", c.Server())
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
				c.WithHTTPClient(a.httpClient(nil))
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
	ws := quickWorkspace
	step := func(format string, args ...any) { fmt.Fprintf(a.stderr, "• "+format+"\n", args...) }
	step("Deploying to workspace %q, local compute %q (this machine), service %q", ws, quickCompute, quickService)
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
		step("Waiting for the local compute %q to start (operation %s)", quickCompute, op.ID)
		if err := a.await(ctx, c, op); err != nil {
			return err
		}
		if comp, err = c.GetCompute(ctx, ws, quickCompute); err != nil {
			return err
		}
		step("Created the local compute %q: front end at https://%s", quickCompute, comp.Endpoint)
	} else if err != nil {
		return err
	}
	if comp.Type != api.ComputeLocal {
		return fmt.Errorf("compute %q of workspace %q is a %s compute, not the local one quickstart deploys to; delete it or use another server", quickCompute, ws, comp.Type)
	}
	model, err := a.bundledModel(ctx, c, ws, step)
	if err != nil {
		return err
	}
	sv, err := c.GetService(ctx, ws, quickService)
	if errors.Is(err, client.ErrNotFound) {
		bin, err := stableExecutable(dir)
		if err != nil {
			return err
		}
		op, err := c.DeployService(ctx, ws, api.ServiceRequest{Name: quickService, ServiceSpec: api.ServiceSpec{
			Compute: quickCompute, Models: []string{model}, Replicas: 1,
			Command: []string{bin, "model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT"}}})
		if err != nil {
			return err
		}
		step("Waiting for service %q to deploy %s (operation %s)", quickService, model, op.ID)
		if err := a.await(ctx, c, op); err != nil {
			return err
		}
		step("Deployed service %q with key auth", quickService)
	} else if err != nil {
		return err
	} else if sv.CurrentOperation != "" {
		step("Waiting for service %q: operation %s is in progress", quickService, sv.CurrentOperation)
		if err := a.await(ctx, c, &api.Operation{ID: sv.CurrentOperation}); err != nil {
			return err
		}
	}
	if sv, err = c.GetService(ctx, ws, quickService); err != nil {
		return err
	}
	if sv.State == api.ServiceFailed {
		return fmt.Errorf("service %q of workspace %q is %s; see `berth service show %s -w %s`, or delete it and run quickstart again", quickService, ws, sv.State, quickService, ws)
	}
	sc, err := a.scorer(ctx, c, ws, sv)
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
	var body string
	for attempt := 0; ; attempt++ {
		ans, err := sc.Score(ctx, []byte(quickSample))
		if err == nil && ans.StatusCode == http.StatusOK {
			body = string(ans.Body)
			break
		}
		if err == nil {
			err = fmt.Errorf("HTTP %d: %s", ans.StatusCode, ans.Body)
		}
		if attempt == 0 {
			step("Waiting for %s to answer (up to 5s): %v", sv.ScoringURI, err)
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
		caFile, sc.Bearer, quickSample, sv.ScoringURI)
	fmt.Fprintf(a.stdout, "or: berth service score %s -w %s --data '%s'\n", quickService, ws, quickSample)
	return nil
}

// bundledModel returns NAME:VERSION of the bundled iris classifier in ws,
// registering it unless a version with the same content is there.
func (a *app) bundledModel(ctx context.Context, c *client.Client, ws string, step func(string, ...any)) (string, error) {
	var buf bytes.Buffer
	if err := tarFS(modelserver.BuiltinFiles(), &buf); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	versions, err := c.ListModels(ctx, ws, quickModel)
	if err != nil {
		return "", err
	}
	for _, m := range versions {
		if m.SHA256 == hex.EncodeToString(sum[:]) {
			return fmt.Sprintf("%s:%d", m.Name, m.Version), nil
		}
	}
	m, err := c.RegisterModel(ctx, ws, client.ModelUpload{Name: quickModel, FileName: "iris", Format: "tar.gz", Body: &buf, Size: int64(buf.Len()),
		Description: "XGBoost iris classifier bundled with Berth", Tags: map[string]string{"dataset": "iris", "framework": "xgboost"}})
	if err != nil {
		return "", err
	}
	step("Registered model %s version %d (the bundled XGBoost iris classifier)", m.Name, m.Version)
	return fmt.Sprintf("%s:%d", m.Name, m.Version), nil
}

// await follows an operation, printing its events, and fails when it did.
func (a *app) await(ctx context.Context, c *client.Client, op *api.Operation) error {
	final, err := a.follow(ctx, c, op, "berth operation events --follow "+op.ID)
	if _, ok := errors.AsType[*client.OperationError](err); ok {
		return errors.New(a.describeFailure(final))
	}
	return err
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
