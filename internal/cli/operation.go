package cli

import (
	"context"
	"fmt"

	"github.com/berth-ml/berth/client"
	"github.com/spf13/cobra"
)

func (a *app) operationCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "operation", Aliases: []string{"op"}, Short: "List operations; show, follow or cancel one by id"}
	show := a.printCommand(&cobra.Command{Use: "show ID", Short: "Show an operation", Args: cobra.ExactArgs(1)}, false,
		func(ctx context.Context, c *client.Client, _ string, args []string) (any, error) {
			return c.GetOperation(ctx, args[0])
		}, operationColumns)
	var follow bool
	events := &cobra.Command{
		Use: "events ID [--follow]", Short: "Print an operation's events (--follow: until it ends)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if !follow {
				evs, err := c.ListEvents(cmd.Context(), args[0], 0)
				if err != nil {
					return err
				}
				if a.format != "table" || a.query != "" {
					return a.print(evs, nil)
				}
				for _, ev := range evs {
					fmt.Fprintln(a.stdout, client.FormatEvent(ev))
				}
				return nil
			}
			_, err = c.Wait(cmd.Context(), args[0], client.WaitOptions{Events: a.stdout})
			return err
		},
	}
	events.Flags().BoolVarP(&follow, "follow", "f", false, "stream events until the operation ends")
	var noWait bool
	cancel := &cobra.Command{
		Use: "cancel ID [--no-wait]", Short: "Cancel an operation and wait until it stops (at its current step; a failed attach is undone)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.CancelOperation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if op.Terminal() && op.StartedAt == nil {
				fmt.Fprintf(a.stderr, "Operation %s (%s of %s) was canceled before it started.\n", op.ID, op.Kind, op.TargetName)
				return a.print(op, operationColumns)
			}
			if op.Terminal() { // it stopped before the answer came
				fmt.Fprintf(a.stderr, "Cancellation of operation %s (%s of %s) requested: it stopped at step %s.\n", op.ID, op.Kind, op.TargetName, op.Step)
			} else {
				fmt.Fprintf(a.stderr, "Cancellation of operation %s (%s of %s) requested: it stops at its current step (%s).\n", op.ID, op.Kind, op.TargetName, op.Step)
			}
			if !noWait && !op.Terminal() {
				// It ends Canceled (or Succeeded or Failed, if it ended
				// first): what it became is the answer, not an error.
				final, err := a.follow(cmd.Context(), c, op, "berth operation events --follow "+op.ID)
				if final == nil {
					return err
				}
				op = final
			}
			return a.print(op, operationColumns)
		},
	}
	cancel.Flags().BoolVar(&noWait, "no-wait", false, "return once the cancel is recorded, without waiting for the operation to stop")
	var state string
	list := a.listCommand("List the workspace's operations, newest first (at most 100)", func(ctx context.Context, c *client.Client, ws string) (any, error) {
		return c.ListOperations(ctx, ws, state)
	}, operationColumns)
	list.Use = "list [--state STATE]"
	list.Flags().StringVar(&state, "state", "", "only operations in this state: Pending, Running, Succeeded, Failed or Canceled")
	list.RegisterFlagCompletionFunc("state", fixedCompletion("Pending", "Running", "Succeeded", "Failed", "Canceled"))
	cmd.AddCommand(show, events, cancel, list)
	return cmd
}
