// Package image builds Berth's container image from the Go toolchain alone:
// berth compiled statically per platform, put on an empty base with a
// nonroot user, a writable /tmp and OCI labels, gathered in an OCI image
// index. It writes the index as an archive `podman load` and `docker load`
// accept, as an OCI layout, or pushes it to a registry. go-containerregistry
// does all the manifest, config, index and archive formats; this package
// only makes each layer's filesystem tar.
//
// The same commit gives the same digests: every file and the config carry
// the commit's time, tar entries are sorted with explicit owners, and Go's
// build is reproducible with -trimpath.
package image

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// SourceURL is the org.opencontainers.image.source label.
const SourceURL = "https://github.com/berth-ml/berth"

// Options says what to build.
type Options struct {
	// Dir is the module's root, where `go build` runs ("" is the current
	// directory).
	Dir string
	// Package is the main package to compile (default "./cmd/berth").
	// Tests point it at a small stand-in.
	Package string
	// Platforms to build, each one of Supported (default: HostPlatform).
	Platforms []v1.Platform
	// Source gives the version, commit and the timestamp of every file;
	// zero means ReadSource(Dir).
	Source Source
	// BinDir keeps the compiled binaries, one per platform (default
	// Dir/.cache/image/bin).
	BinDir string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Build compiles berth for each platform and returns the OCI image index
// holding one image per platform, ordered as ParsePlatforms orders them.
func Build(ctx context.Context, o Options) (v1.ImageIndex, error) {
	o.Dir = cmp.Or(o.Dir, ".")
	o.Package = cmp.Or(o.Package, "./cmd/berth")
	if len(o.Platforms) == 0 {
		ps, err := ParsePlatforms(HostPlatform())
		if err != nil {
			return nil, err
		}
		o.Platforms = ps
	}
	for _, p := range o.Platforms {
		if _, err := ParsePlatforms(platformName(p)); err != nil {
			return nil, err
		}
	}
	if o.Source.Version == "" {
		s, err := ReadSource(ctx, o.Dir)
		if err != nil {
			return nil, err
		}
		o.Source = s
	}
	o.BinDir = cmp.Or(o.BinDir, filepath.Join(o.Dir, ".cache", "image", "bin"))
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}

	base, err := newLayer(baseEntries(), o.Source.Time)
	if err != nil {
		return nil, err
	}

	// Compile (and lay out) the platforms side by side: a warm build is
	// mostly the linker, which uses about one core.
	images := make([]v1.Image, len(o.Platforms))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range o.Platforms {
		g.Go(func() error {
			start := time.Now()
			bin, err := compile(gctx, o, p)
			if err != nil {
				return err
			}
			img, err := platformImage(o.Source, p, base, bin)
			if err != nil {
				return fmt.Errorf("%s: %w", platformName(p), err)
			}
			// Compress now, in parallel, so the digest is known.
			if _, err := img.Digest(); err != nil {
				return fmt.Errorf("%s: %w", platformName(p), err)
			}
			mu.Lock()
			logf("built %s in %s", platformName(p), time.Since(start).Round(time.Millisecond))
			mu.Unlock()
			images[i] = img
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		p := o.Platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p},
		})
	}
	return mutate.Annotations(idx, annotations(o.Source)).(v1.ImageIndex), nil
}

// compile runs `go build` for one platform, static and stripped, with the
// version and commit linked in.
// CompileBinary builds berth for any GOOS/GOARCH the way the image's
// binaries are built (static, -trimpath, the version and commit in
// -ldflags, the baseline instruction set) into o.BinDir/GOOS_GOARCH/berth;
// hack/release uses it for the release archives. o.Dir, o.Package,
// o.Source and o.BinDir must be set.
func CompileBinary(ctx context.Context, o Options, goos, goarch string) (string, error) {
	return compile(ctx, o, v1.Platform{OS: goos, Architecture: goarch})
}

func compile(ctx context.Context, o Options, p v1.Platform) (string, error) {
	out := filepath.Join(o.BinDir, p.OS+"_"+p.Architecture, "berth")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "github.com/berth-ml/berth/internal/version.Version=" + o.Source.Version,
		"-X", "github.com/berth-ml/berth/internal/version.Commit=" + o.Source.Commit,
	}, " ")
	// -buildvcs=false: the version and commit come from -ldflags, and the
	// binary must not depend on the GOFLAGS of whoever builds it.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, o.Package)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0",
		"GOOS="+p.OS,
		"GOARCH="+p.Architecture,
		// The baseline instruction sets, whatever the builder's
		// environment says, so every node of the platform runs it.
		"GOAMD64=v1",
		"GOARM64=v8.0",
	)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %v\n%s", o.Package, platformName(p), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func labels(s Source) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.source":      SourceURL,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.title":       "berth",
		"org.opencontainers.image.description": "Berth: CLI, control plane (berth server), scoring front end (berth frontend), model-init and model-server in one binary",
		"org.opencontainers.image.created":     s.Time.UTC().Format(time.RFC3339),
	}
	if s.Commit != "" {
		l["org.opencontainers.image.revision"] = s.Commit
	}
	return l
}

// annotations go on the index, so a registry's UI shows them without
// fetching a platform's config.
func annotations(s Source) map[string]string {
	a := labels(s)
	delete(a, "org.opencontainers.image.description")
	return a
}

func platformImage(s Source, p v1.Platform, base v1.Layer, binary string) (v1.Image, error) {
	bin, err := newLayer(binaryEntries(binary), s.Time)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: s.Time}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			// No Cmd: `podman run IMAGE` runs plain `berth` (its help),
			// and a Kubernetes pod's command replaces the entrypoint.
			User:       fmt.Sprintf("%d:%d", NonrootUID, NonrootGID),
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			WorkingDir: "/",
			Labels:     labels(s),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{
			Layer:     base,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: "berth hack/image: /etc/passwd, /etc/group, /tmp, /home/nonroot", Comment: "base"},
		},
		mutate.Addendum{
			Layer:     bin,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: "berth hack/image: CGO_ENABLED=0 go build -trimpath ./cmd/berth", Comment: platformName(p)},
		},
	)
}
