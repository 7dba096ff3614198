package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
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
			body, err := scoringBody(data, file)
			if err != nil {
				return err
			}
			c, ws, sv, err := a.service(cmd.Context(), name)
			if err != nil {
				return err
			}
			sc, err := a.scorer(cmd.Context(), c, ws, sv)
			if err != nil {
				return err
			}
			ans, err := sc.Score(cmd.Context(), body)
			if err != nil {
				return err
			}
			if ans.StatusCode != http.StatusOK {
				return fmt.Errorf("scoring %s: HTTP %d: %s", sv.ScoringURI, ans.StatusCode, ans.Body)
			}
			return a.printAnswer(ans.Body)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "service name")
	cmd.Flags().StringVar(&data, "data", "", "the request, as JSON")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a file holding the request (- for standard input)")
	cmd.MarkFlagsOneRequired("data", "file")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	return cmd
}

// scorer is the SDK's scorer for sv, sending through the CLI's HTTP
// client (--debug shows its requests).
// scoringBody is a scoring request from --data or --file (- for standard
// input), which must be JSON.
func scoringBody(data, file string) ([]byte, error) {
	body := []byte(data)
	if file != "" {
		var err error
		if file == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, usageErrorf("--file: %v", err)
		}
	}
	if !json.Valid(body) {
		return nil, usageErrorf("the request is not JSON: give a JSON document with --data or --file")
	}
	return body, nil
}

func (a *app) scorer(ctx context.Context, c *client.Client, ws string, sv *api.Service) (*client.Scorer, error) {
	s, err := c.Scorer(ctx, ws, sv)
	if err != nil {
		return nil, err
	}
	s.HTTP = a.httpClient(s.TLS)
	s.HTTP.Timeout = 2 * time.Minute
	return s, nil
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
