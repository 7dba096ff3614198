package cli

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/spf13/cobra"
)

// modelInitCommand is what a replica's init container runs: it downloads
// the service's models from the control plane into the folder shared with
// the model container (docs/model-delivery.md).
func (a *app) modelInitCommand() *cobra.Command {
	var (
		source, models, tokenFile, dest string
		timeout                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "model-init",
		Short: "Fetch a service's models into a replica (what the init container of a cluster replica runs)",
		Long: `Downloads each model version of BERTH_MODELS from the control plane
(BERTH_MODEL_SOURCE), authenticated by the pod's projected service-account
token (BERTH_TOKEN_FILE), checks its SHA-256 and unpacks it into
DEST/NAME/VERSION, within the limits the server sends (its
--max-model-unpacked-bytes and --max-model-files). Unreachable servers and 5xx answers are retried until
--timeout; refusals (401, 403, 404) fail at once with the server's reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := func(v *string, k string) { *v = cmp.Or(*v, a.getenv(k)) }
			env(&source, "BERTH_MODEL_SOURCE")
			env(&models, "BERTH_MODELS")
			env(&tokenFile, "BERTH_TOKEN_FILE")
			env(&dest, "BERTH_MODELS_PATH")
			var missing []string
			for _, f := range []struct{ v, flag string }{{source, "--source"}, {models, "--models"}, {tokenFile, "--token-file"}, {dest, "--dest"}} {
				if f.v == "" {
					missing = append(missing, f.flag)
				}
			}
			if len(missing) > 0 {
				return usageErrorf("model-init needs %s (or their BERTH_* variables)", strings.Join(missing, ", "))
			}
			var refs []api.ModelRef
			for _, s := range strings.Split(models, ",") {
				r, err := api.ParseModelRef(strings.TrimSpace(s))
				if err != nil || r.Version == 0 {
					return usageErrorf("--models: %q is not NAME:VERSION", s)
				}
				refs = append(refs, r)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			f := &modelFetcher{source: strings.TrimRight(source, "/"), tokenFile: tokenFile, log: a.stderr}
			for _, r := range refs {
				start := time.Now()
				dir := filepath.Join(dest, r.Name, fmt.Sprint(r.Version))
				if _, err := os.Stat(dir); err == nil {
					// A restarted init container keeps what it fetched (a
					// folder appears only once complete).
					fmt.Fprintf(a.stderr, "model %s:%d is already in %s\n", r.Name, r.Version, dir)
					continue
				}
				n, err := f.fetch(ctx, r, dir)
				if err != nil {
					return fmt.Errorf("model %s:%d: %w", r.Name, r.Version, err)
				}
				fmt.Fprintf(a.stderr, "fetched model %s:%d (%d bytes, SHA-256 checked) into %s in %s\n", r.Name, r.Version, n, dir, time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "the service's delivery URL (env BERTH_MODEL_SOURCE)")
	f.StringVar(&models, "models", "", "NAME:VERSION,… to fetch (env BERTH_MODELS)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the pod's service-account token, re-read on each attempt (env BERTH_TOKEN_FILE)")
	f.StringVar(&dest, "dest", "", "folder to unpack into, as DEST/NAME/VERSION (env BERTH_MODELS_PATH)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

type modelFetcher struct {
	source, tokenFile string
	log               io.Writer
	client            http.Client
}

// permanent marks errors retrying cannot fix.
type permanent struct{ error }

// fetch downloads one version into dir (atomically: a finished dir is
// never half written), retrying what may pass.
func (f *modelFetcher) fetch(ctx context.Context, r api.ModelRef, dir string) (int64, error) {
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := f.try(ctx, r, dir)
		if err == nil {
			return n, nil
		}
		if p, ok := errors.AsType[permanent](err); ok {
			return 0, p.error
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("gave up: %w", err)
		}
		fmt.Fprintf(f.log, "attempt %d: %v; retrying in %s\n", attempt, err, backoff)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("gave up: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (f *modelFetcher) try(ctx context.Context, r api.ModelRef, dir string) (int64, error) {
	token, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return 0, fmt.Errorf("read the token: %w", err)
	}
	url := fmt.Sprintf("%s/models/%s/versions/%d", f.source, r.Name, r.Version)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, permanent{err}
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		var e api.ErrorResponse
		if b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = fmt.Sprintf("%d %s", resp.StatusCode, e.Error.Message)
		}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return 0, permanent{errors.New(msg)}
		}
		return 0, errors.New(msg)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, permanent{err}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dir), ".download-*")
	if err != nil {
		return 0, permanent{err}
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err != nil {
		return 0, err
	}
	if want := resp.Header.Get("X-Berth-Sha256"); want != hex.EncodeToString(h.Sum(nil)) {
		return 0, fmt.Errorf("the download's SHA-256 does not match the registered %s", want)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, permanent{err}
	}
	unpacked := dir + ".partial"
	os.RemoveAll(unpacked)
	name := filepath.Base(r.Name)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = params["filename"]
	}
	// The control plane sends the limits it registered the model under;
	// an older one sends none, and the defaults apply.
	lim := artifact.LimitsFromHeader(resp.Header)
	if err := artifact.Unpack(tmp, resp.Header.Get("X-Berth-Format"), name, unpacked, lim); err != nil {
		os.RemoveAll(unpacked)
		return 0, permanent{fmt.Errorf("unpack: %w", err)}
	}
	if err := os.Rename(unpacked, dir); err != nil {
		return 0, permanent{err}
	}
	return n, nil
}
