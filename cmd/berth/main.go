// Command berth is Berth's CLI and, as `berth server`, its control plane.
package main

import (
	"context"
	"os"

	"github.com/berth-ml/berth/internal/cli"
)

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
