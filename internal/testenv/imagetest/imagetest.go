// Package imagetest gives tests Berth's container image, loaded into
// podman's storage, so that they run what a real kubelet would run.
//
// The image comes from BERTH_TEST_IMAGE (a reference already in podman's
// storage), else from the archive BERTH_IMAGE_ARCHIVE (default
// .cache/image/berth.tar in the main module, which ./hack/test.sh builds
// with `go run ./hack/image build`). Without podman or an image the tests
// skip, unless BERTH_REQUIRE_PODMAN=1 (./hack/test.sh sets it), when they
// fail.
package imagetest

import (
	"context"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
)

var (
	once   sync.Once
	loaded string
	errLd  error
)

// Image returns the reference of Berth's image in podman's storage.
func Image(t testing.TB) string {
	testenv.SkipShort(t, "Berth's image under podman")
	t.Helper()
	once.Do(func() { loaded, errLd = load() })
	if errLd != nil {
		if os.Getenv("BERTH_REQUIRE_PODMAN") == "1" {
			t.Fatalf("Berth's image: %v", errLd)
		}
		t.Skipf("Berth's image is not available: %v", errLd)
	}
	return loaded
}

func load() (string, error) {
	if err := kubelet.Available(); err != nil {
		return "", err
	}
	if ref := os.Getenv("BERTH_TEST_IMAGE"); ref != "" {
		return ref, nil
	}
	archive := os.Getenv("BERTH_IMAGE_ARCHIVE")
	if archive == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		archive = filepath.Join(root, ".cache", "image", "berth.tar")
	}
	if _, err := os.Stat(archive); err != nil {
		return "", fmt.Errorf("no image archive (build it with `go run ./hack/image build --out %s`): %w", archive, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := kubelet.LoadImage(ctx, archive)
	if err != nil {
		return "", err
	}
	return LoadedName(out)
}

// LoadedName is the image reference `podman load` reports.
func LoadedName(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Loaded image"); ok {
			if _, ref, ok := strings.Cut(rest, ":"); ok {
				ref = strings.TrimSpace(ref)
				if i := strings.LastIndex(ref, ","); i >= 0 {
					ref = strings.TrimSpace(ref[i+1:])
				}
				if ref != "" && !strings.HasPrefix(ref, "sha256:") {
					return ref, nil
				}
			}
		}
	}
	return "", fmt.Errorf("podman load named no image:\n%s", out)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/berth-ml/berth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the berth module")
		}
		dir = parent
	}
}
