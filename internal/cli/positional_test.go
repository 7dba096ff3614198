package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestPositionalNameBesideTypeWord: compute update takes the reference's
// type word beside -n (`computetarget update aks -n myaks`), a name as
// the argument, and refuses two different names.
func TestPositionalNameBesideTypeWord(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantName string
		wantErr  bool
	}{
		{[]string{"aks", "-n", "myaks"}, "myaks", false},
		{[]string{"myaks"}, "myaks", false},
		{[]string{"aks"}, "aks", false}, // no -n: a compute named aks
		{[]string{"other", "-n", "myaks"}, "", true},
		{[]string{"a", "b"}, "", true},
	} {
		var name string
		cmd := &cobra.Command{Use: "update", ValidArgs: []string{"aks", "kubernetes"}, RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().StringVarP(&name, "name", "n", "", "")
		cmd.Args = positionalName(cmd.ValidArgs)
		cmd.SetArgs(tc.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if (err != nil) != tc.wantErr || (!tc.wantErr && name != tc.wantName) {
			t.Errorf("%v: name %q, err %v; want %q, error %v", tc.args, name, err, tc.wantName, tc.wantErr)
		}
	}
}

// TestEndpointLogsDataTakesItsNameAsTheArgument: `endpoint logs-data
// fraud` is `-e fraud`; two different names are refused.
func TestEndpointLogsDataTakesItsNameAsTheArgument(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" wants an error
	}{
		{[]string{"fraud"}, "fraud"},
		{[]string{"-e", "fraud"}, "fraud"},
		{[]string{"fraud", "-e", "fraud"}, "fraud"},
		{[]string{"fraud", "-e", "other"}, ""},
		{[]string{"a", "b"}, ""},
	} {
		cmd := (&app{}).endpointLogsData()
		cmd.RunE = func(*cobra.Command, []string) error { return nil }
		cmd.SetArgs(tc.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if got := cmd.Flags().Lookup("endpoint").Value.String(); (err != nil) != (tc.want == "") || err == nil && got != tc.want {
			t.Errorf("%v: endpoint %q, err %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

// TestUsageHintOnce: an argument error cobra words gets the usage hint; one
// the command words itself (positionalFlag's, wrapped by finishTree) is
// passed on as it is, so no message carries the hint twice. Both exit 2.
func TestUsageHintOnce(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want      string
		wantHints int
	}{
		{[]string{"version", "extra"}, `unknown command "extra" for "berth version"`, 1},
		{[]string{"endpoint", "logs-data", "a", "b"}, `too many arguments ["a" "b"]: give one name`, 1},
		{[]string{"endpoint", "logs-data", "a", "-e", "b"}, `two names given: "a" as the argument and "b" with -e; give one`, 0},
	} {
		var stdout, stderr strings.Builder
		code := Execute(context.Background(), tc.args, &stdout, &stderr, func(string) string { return "" })
		if code != ExitUsage || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "for usage.") != tc.wantHints {
			t.Errorf("%v: exit %d, stderr %q; want exit %d, %q and %d usage hint(s)", tc.args, code, stderr.String(), ExitUsage, tc.want, tc.wantHints)
		}
	}
}
