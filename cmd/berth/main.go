// Command berth is Berth's CLI and, as `berth server`, its control plane.
package main

import (
	"context"
	"os"

	// Mozilla's CA roots, used only when the system has none: the
	// container image is an empty base without a CA bundle.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/berth-ml/berth/internal/cli"
	"github.com/berth-ml/berth/internal/provider"
)

// providers are compute types beside the built-in ones (test builds add one).
var providers []provider.Provider

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv, providers...))
}
