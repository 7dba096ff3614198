package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// finishTree gives every command of the tree the habits of the az and
// kubectl CLIs: an unknown subcommand or a wrong argument count is a usage
// error (exit 2) with suggestions, a resource's name may be given as the
// argument instead of -n and is completed from the server, required flags
// say so in help, and help shows examples.
func (a *app) finishTree(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		a.finishTree(c)
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args, cmd.RunE = cobra.ArbitraryArgs, unknownSubcommand
	}
	if orig := cmd.Args; orig != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := orig(c, args)
			if _, worded := errors.AsType[*exitError](err); err == nil || worded {
				return err // nil, or a usage error the command worded itself
			}
			return usageErrorf("%v\nRun '%s --help' for usage.", err, c.CommandPath())
		}
	}
	kind := resourceKind(cmd)
	if f := cmd.LocalNonPersistentFlags().Lookup("name"); f != nil && f.Shorthand == "n" {
		cmd.Args = positionalName(cmd.ValidArgs)
		if kind != "" && !creates(cmd) {
			cmd.ValidArgsFunction = a.completeNames(kind, true)
			cmd.RegisterFlagCompletionFunc("name", a.completeNames(kind, false))
		}
		if strings.Contains(cmd.Use, "-n NAME") && !strings.Contains(cmd.Use, "[-n NAME]") {
			f.Usage += " (required; or give it as the argument)"
		}
		cmd.Use = strings.Replace(cmd.Use, "-n NAME", "NAME|-n NAME", 1)
	}
	for flag, kind := range map[string]string{"compute": "computes", "model": "models", "endpoint": "endpoints"} {
		if cmd.LocalNonPersistentFlags().Lookup(flag) != nil {
			cmd.RegisterFlagCompletionFunc(flag, a.completeNames(kind, false))
		}
	}
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; ok {
			f.Usage += " (required)"
		}
	})
	cmd.Example = cmp.Or(cmd.Example, examples[cmd.CommandPath()])
}

// deprecatedAlias hides an old name of a flag; using it prints a note
// (on stderr: pflag's own deprecation note goes to cobra's stdout).
func deprecatedAlias(f *pflag.FlagSet, name, note string) {
	f.MarkHidden(name)
	f.SetAnnotation(name, deprecatedNote, []string{note})
}

const deprecatedNote = "berth-deprecated"

// warnDeprecated prints the note of each deprecated flag cmd was given.
func (a *app) warnDeprecated(cmd *cobra.Command) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if note := f.Annotations[deprecatedNote]; len(note) > 0 {
			fmt.Fprintf(a.stderr, "Flag --%s has been deprecated, %s\n", f.Name, note[0])
		}
	})
}

// unknownSubcommand is the RunE of a command group: alone it prints the
// group's help; with an argument that names no subcommand it is a usage
// error that suggests the closest ones.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageErrorf("%s\nRun '%s --help' for usage.", msg, cmd.CommandPath())
}

// positionalName lets a command on one resource take its name as the
// argument, as kubectl does: `berth service show iris` is `-n iris`. A word
// the command declares (compute update's type, as the reference writes
// `computetarget update aks -n NAME`) given beside -n is that word, not a
// name.
func positionalName(words []string) cobra.PositionalArgs { return positionalFlag("name", words) }

// positionalFlag is positionalName for a command whose name flag is
// another (endpoint logs-data's -e).
func positionalFlag(flag string, words []string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		f := cmd.Flags().Lookup(flag)
		if len(args) == 1 && f.Changed && slices.Contains(words, args[0]) {
			return nil
		}
		switch {
		case len(args) == 0:
			return nil
		case len(args) > 1:
			return usageErrorf("too many arguments %q: give one name\nRun '%s --help' for usage.", args, cmd.CommandPath())
		}
		if f.Changed && f.Value.String() != args[0] {
			return usageErrorf("two names given: %q as the argument and %q with -%s; give one", args[0], f.Value.String(), f.Shorthand)
		}
		return cmd.Flags().Set(flag, args[0])
	}
}

// resourceKind is what a command's -n names: computes, services, models or
// workspaces, by the group it is in.
func resourceKind(cmd *cobra.Command) string {
	for c := cmd; c != nil; c = c.Parent() {
		switch c.Name() {
		case "compute", "service", "endpoint", "model", "workspace":
			return c.Name() + "s"
		}
	}
	return ""
}

// creates reports whether a command makes a new resource (whose name
// there is nothing to complete from).
func creates(cmd *cobra.Command) bool {
	return slices.Contains([]string{"create", "deploy", "register"}, cmd.Name()) ||
		cmd.Parent() != nil && slices.Contains([]string{"create", "attach"}, cmd.Parent().Name())
}

// completeNames completes the names of a kind of resource from the server
// (in the command's workspace); positional completes the argument, which
// is given once and not beside -n.
func (a *app) completeNames(kind string, positional bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if positional && (len(args) > 0 || cmd.Flags().Changed("name")) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		names, err := a.resourceNames(ctx, kind)
		if err != nil {
			cobra.CompDebugln(err.Error(), true)
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) resourceNames(ctx context.Context, kind string) ([]string, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	if kind == "workspaces" {
		l, err := c.ListWorkspaces(ctx)
		return namesOf(l, err, func(x api.Workspace) string { return x.Name })
	}
	if a.workspace == "" {
		return nil, fmt.Errorf("no workspace")
	}
	switch kind {
	case "computes":
		l, err := c.ListComputes(ctx, a.workspace)
		return namesOf(l, err, func(x api.Compute) string { return x.Name })
	case "services":
		l, err := c.ListServices(ctx, a.workspace)
		return namesOf(l, err, func(x api.Service) string { return x.Name })
	case "endpoints":
		l, err := c.ListEndpoints(ctx, a.workspace)
		return namesOf(l, err, func(x api.Endpoint) string { return x.Name })
	}
	l, err := c.ListModels(ctx, a.workspace, "")
	return namesOf(l, err, func(x api.Model) string { return x.Name })
}

// namesOf are the distinct names of a list's items (a model's versions
// share one), passing on the error that came with the list.
func namesOf[T any](l []T, err error, name func(T) string) ([]string, error) {
	var names []string
	for _, x := range l {
		if !slices.Contains(names, name(x)) {
			names = append(names, name(x))
		}
	}
	return names, err
}

// flagError is a usage error for a flag the command does not have or
// cannot parse; a mistyped flag gets the closest one suggested.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if typed, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		best, dist := "", 3
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if d := distance(typed, f.Name); d < dist && !f.Hidden {
				best, dist = f.Name, d
			}
		})
		if best != "" {
			msg += fmt.Sprintf("\n\nDid you mean this?\n\t--%s", best)
		}
	}
	return usageErrorf("%s\nRun '%s --help' for usage.", msg, cmd.CommandPath())
}

// distance is the Damerau–Levenshtein distance of a and b (a swap of
// two neighbours counts once: --nmae is one step from --name).
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
