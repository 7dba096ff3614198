package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/spf13/cobra"
)

func (a *app) serviceScore() *cobra.Command {
	var name, data, file string
	cmd := &cobra.Command{
		Use:   "score -n NAME (--data JSON | --file F)",
		Short: "Send a scoring request to a service and print its answer (as az ml service run)",
		Long: `Send JSON to the service's scoring URI over HTTPS and print the answer. The
request carries the service's primary key (key auth) or a fresh token (token
auth), both fetched with your Berth token, and trusts the compute's CA. Exits 1
when the service does not answer 200.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := []byte(data)
			if file != "" {
				var err error
				if file == "-" {
					body, err = io.ReadAll(os.Stdin)
				} else {
					body, err = os.ReadFile(file)
				}
				if err != nil {
					return usageErrorf("--file: %v", err)
				}
			}
			if !json.Valid(body) {
				return usageErrorf("the request is not JSON: give a JSON document with --data or --file")
			}
			c, ws, sv, err := a.service(cmd.Context(), name)
			if err != nil {
				return err
			}
			sc, err := a.scorer(cmd.Context(), c, ws, sv)
			if err != nil {
				return err
			}
			status, out, err := sc.score(cmd.Context(), body)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("scoring %s: HTTP %d: %s", sv.ScoringURI, status, out)
			}
			var v any
			if a.format == "table" && a.query == "" || json.Unmarshal([]byte(out), &v) != nil {
				_, err := fmt.Fprintln(a.stdout, out)
				return err
			}
			return a.print(v, nil)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "service name")
	cmd.Flags().StringVar(&data, "data", "", "the request, as JSON")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a file holding the request (- for standard input)")
	cmd.MarkFlagsOneRequired("data", "file")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	return cmd
}

// scorer sends scoring requests to one service with its credential.
type scorer struct {
	uri, bearer string
	hc          *http.Client
}

// scorer fetches what scoring sv takes: its primary key or a token, and
// its compute's CA.
func (a *app) scorer(ctx context.Context, c *client.Client, ws string, sv *api.Service) (*scorer, error) {
	if sv.ScoringURI == "" {
		return nil, fmt.Errorf("service %s has no scoring URI yet (state %s); wait for it with: berth service wait %s", sv.Name, sv.State, sv.Name)
	}
	s := &scorer{uri: sv.ScoringURI}
	switch sv.Auth {
	case "token":
		t, err := c.ServiceToken(ctx, ws, sv.Name)
		if err != nil {
			return nil, err
		}
		s.bearer = t.AccessToken
	case "none":
	default:
		k, err := c.ServiceKeys(ctx, ws, sv.Name)
		if err != nil {
			return nil, err
		}
		s.bearer = k.PrimaryKey
	}
	cert, err := c.GetCertificate(ctx, ws, sv.Compute, false)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM([]byte(cert.CAPEM))
	s.hc = a.httpClient(&tls.Config{RootCAs: pool})
	s.hc.Timeout = 2 * time.Minute
	return s, nil
}

// score posts body and returns the answer's status and text.
func (s *scorer) score(ctx context.Context, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", s.uri, strings.NewReader(string(body)))
	if err != nil {
		return 0, "", err
	}
	if s.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func (a *app) serviceWait() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "wait -n NAME",
		Short: "Wait for a service's current operation to end, showing its events",
		Long: `Wait for the service's deploy, update or delete in progress and print the
service at the end (or at once, when none is in progress). Exits 1 if the
operation failed or the service is Failed.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, sv, err := a.service(cmd.Context(), name)
			if err != nil {
				return err
			}
			if sv.CurrentOperation != "" {
				op, err := c.GetOperation(cmd.Context(), sv.CurrentOperation)
				if err != nil {
					return err
				}
				return a.finishService(cmd.Context(), c, ws, op, false)
			}
			if err := a.print(sv, serviceColumns); err != nil {
				return err
			}
			if sv.State == api.ServiceFailed {
				fmt.Fprintf(a.stderr, "Error: service %s is %s\n", sv.Name, sv.State)
				return &exitError{code: ExitFailed, err: errSilent}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "service name")
	return cmd
}
