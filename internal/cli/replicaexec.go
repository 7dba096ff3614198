package cli

import (
	"github.com/berth-ml/berth/internal/provider/local"
	"github.com/spf13/cobra"
)

// replicaExecCommand is the local compute's replica launcher, which the
// server runs, not people (hidden): it hides the data directory from the
// replica and runs its command (internal/provider/local/sandbox_linux.go).
func (a *app) replicaExecCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "replica-exec --hide DIR [--expose DIR]... -- PROGRAM [ARGS...]",
		Short:              "Run a local replica with the data directory hidden (used by berth server)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := local.ReplicaExec(args)
			if err != nil {
				return &exitError{code: 126, err: err}
			}
			if code != 0 {
				return &exitError{code: code, err: errSilent}
			}
			return nil
		},
	}
}
