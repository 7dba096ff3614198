// Command image builds and pushes Berth's container image without Docker:
//
//	go run ./hack/image build [--platform linux/amd64,linux/arm64] [--tag berth:VERSION] --out FILE.tar [--oci-layout DIR]
//	go run ./hack/image push --tag REGISTRY/REPO:TAG [--platform …] [--from DIR]
//
// The work is done by internal/image; see docs/images.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-ml/berth/internal/image"
)

const usage = `usage:
  go run ./hack/image build [--platform LIST] [--tag NAME:TAG] [--version V] --out FILE.tar [--oci-layout DIR]
  go run ./hack/image push --tag REGISTRY/REPO:TAG [--platform LIST] [--version V] [--from DIR]

Platforms: %s (comma-separated). build defaults to this host's (%s),
push to all of them.
`

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "image:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, strings.Join(image.Supported, ", "), image.HostPlatform())
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "build":
		return build(ctx, args[1:], stdout, stderr)
	case "push":
		return push(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, strings.Join(image.Supported, ", "), image.HostPlatform())
		return nil
	}
	fmt.Fprintf(stderr, usage, strings.Join(image.Supported, ", "), image.HostPlatform())
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

func flags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("build", stderr)
	platforms := fs.String("platform", image.HostPlatform(), "comma-separated platforms: "+strings.Join(image.Supported, ", "))
	tagFlag := fs.String("tag", "", "the archive's tag (default berth:VERSION)")
	out := fs.String("out", "", "write a docker-archive for `podman load -i` here")
	ociLayout := fs.String("oci-layout", "", "also write the multi-arch index as an OCI image layout directory here")
	versionFlag := fs.String("version", "", "the version stamped into berth and the labels (default: from git, as berth reports it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" && *ociLayout == "" {
		return usageError{errors.New("build: --out FILE.tar (or --oci-layout DIR) is required")}
	}
	ps, err := image.ParsePlatforms(*platforms)
	if err != nil {
		return usageError{err}
	}
	src, err := image.ReadSource(ctx, ".")
	if err != nil {
		return err
	}
	if *versionFlag != "" {
		src.Version = *versionFlag
	}
	tag, err := image.ParseTag(orDefault(*tagFlag, "berth:"+src.Version))
	if err != nil {
		return usageError{err}
	}

	start := time.Now()
	fmt.Fprintf(stderr, "building %s (version %s, commit %s) for %s\n", tag, src.Version, orDefault(src.Commit, "none"), *platforms)
	idx, err := image.Build(ctx, image.Options{Platforms: ps, Source: src, Log: stderr})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := image.WriteArchive(*out, tag, idx); err != nil {
			return err
		}
	}
	if *ociLayout != "" {
		if err := image.WriteLayout(*ociLayout, tag, idx); err != nil {
			return err
		}
	}
	if err := summary(stdout, tag, idx); err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(stdout, "archive      %s (load: podman load -i %s)\n", *out, *out)
	}
	if *ociLayout != "" {
		fmt.Fprintf(stdout, "layout       %s\n", *ociLayout)
	}
	fmt.Fprintf(stdout, "time         %.1fs\n", time.Since(start).Seconds())
	return nil
}

func push(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("push", stderr)
	platforms := fs.String("platform", image.AllPlatforms, "comma-separated platforms: "+strings.Join(image.Supported, ", "))
	tagFlag := fs.String("tag", "", "destination REGISTRY/REPO:TAG (required)")
	from := fs.String("from", "", "push the index of this OCI layout (written by build --oci-layout) instead of building")
	versionFlag := fs.String("version", "", "the version stamped into berth and the labels (default: from git, as berth reports it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tagFlag == "" {
		return usageError{errors.New("push: --tag REGISTRY/REPO:TAG is required")}
	}
	tag, err := image.ParsePushTag(*tagFlag)
	if err != nil {
		return usageError{err}
	}
	ps, err := image.ParsePlatforms(*platforms)
	if err != nil {
		return usageError{err}
	}

	start := time.Now()
	// A registry that refuses the push is told before anything is built.
	if err := image.CheckPush(ctx, tag); err != nil {
		return err
	}
	var idx v1.ImageIndex
	if *from != "" {
		if idx, err = image.ReadLayout(*from); err != nil {
			return err
		}
	} else {
		src, err := image.ReadSource(ctx, ".")
		if err != nil {
			return err
		}
		if *versionFlag != "" {
			src.Version = *versionFlag
		}
		fmt.Fprintf(stderr, "building version %s for %s\n", src.Version, *platforms)
		if idx, err = image.Build(ctx, image.Options{Platforms: ps, Source: src, Log: stderr}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "pushing to %s\n", tag)
	if err := image.Push(ctx, tag, idx); err != nil {
		return err
	}
	if err := summary(stdout, tag, idx); err != nil {
		return err
	}
	d, _ := idx.Digest()
	fmt.Fprintf(stdout, "pushed       %s@%s\n", tag.Context(), d)
	fmt.Fprintf(stdout, "time         %.1fs\n", time.Since(start).Seconds())
	return nil
}

func summary(w io.Writer, tag name.Tag, idx v1.ImageIndex) error {
	imgs, err := image.Images(idx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "tag          %s\n", tag)
	for _, pi := range imgs {
		fmt.Fprintf(w, "%-12s %s  %.1f MB compressed\n", pi.Platform.OS+"/"+pi.Platform.Architecture, pi.Digest, float64(pi.CompressedSize)/1e6)
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "index        %s\n", d)
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
