package cli

import (
	"io"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples walks the whole command tree: each command's
// help must have an Examples: section (hidden commands, which help does
// not list, and what is under them aside).
func TestEveryCommandHasExamples(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		n++
		if c.Hidden {
			return
		}
		if c.Example == "" {
			t.Errorf("%s has no Examples: section", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(a.rootCommand())
	if n < 50 {
		t.Fatalf("walked only %d commands", n)
	}
}
