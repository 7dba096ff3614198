package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/modelserver"
	"github.com/spf13/cobra"
)

func (a *app) modelServerCommand() *cobra.Command {
	var dir, listen string
	cmd := &cobra.Command{
		Use:   "model-server [--model-dir DIR] [--listen ADDR]",
		Short: "Serve a gradient-boosted tree model (the built-in iris classifier by default) over HTTP",
		Long: `The reference model server: POST /score with {"data": [[...], ...]} and the Open
Inference Protocol v2 (/v2/models/NAME/infer), the contract berth-fe expects of
every model server. With no --model-dir it serves the model in BERTH_MODEL_DIR
(where a replica finds its first model), or else the iris classifier Berth
ships. With no --listen it serves on all addresses at port PORT when that is
set (as in a replica), or else on 127.0.0.1:5001. An address without a host
means every address, or BERTH_LISTEN_HOST when that is set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir = cmp.Or(dir, a.getenv("BERTH_MODEL_DIR"))
			if listen == "" {
				listen = "127.0.0.1:5001"
				if p := a.getenv("PORT"); p != "" {
					listen = ":" + p
				}
			}
			listen = a.bindAddr(listen)
			var (
				m   *modelserver.Model
				err error
			)
			if dir == "" {
				m, err = modelserver.Builtin()
			} else {
				m, err = modelserver.Load(dir)
			}
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := &http.Server{Addr: listen, Handler: modelserver.Handler(m), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.ListenAndServe() }()
			fmt.Fprintf(a.stderr, "serving model %s version %s on http://%s\n", m.Metadata().Name, m.Metadata().Version, listen)
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "model-dir", "", "a model directory with metadata.json (default: $BERTH_MODEL_DIR, else the built-in iris classifier)")
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on (default: :$PORT when PORT is set, else 127.0.0.1:5001)")
	return cmd
}
