package image

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxCompressed is the target for one platform's image: what a node pulls.
const maxCompressed = 40 << 20

// The real image, berth itself for this host's platform, is built once
// (about 10 s with a warm Go cache, a minute or two cold) and shared.
var (
	realOnce sync.Once
	realIdx  v1.ImageIndex
	realSrc  Source
	realBin  string
	realErr  error
)

func realImage(t *testing.T) (v1.ImageIndex, Source) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not compiling berth")
	}
	realOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		realSrc, realErr = ReadSource(ctx, root)
		if realErr != nil {
			return
		}
		ps, _ := ParsePlatforms(HostPlatform())
		bin, err := os.MkdirTemp("", "image-real")
		if err != nil {
			realErr = err
			return
		}
		start := time.Now()
		realIdx, realErr = Build(ctx, Options{Dir: root, Platforms: ps, Source: realSrc, BinDir: bin})
		realBin = filepath.Join(bin, ps[0].OS+"_"+ps[0].Architecture, "berth")
		t.Logf("built berth %s for %s in %s", realSrc.Version, HostPlatform(), time.Since(start).Round(time.Millisecond))
	})
	if realErr != nil {
		t.Fatalf("building berth's image: %v", realErr)
	}
	return realIdx, realSrc
}

func TestRealImage(t *testing.T) {
	idx, src := realImage(t)
	imgs, err := Images(idx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range imgs {
		t.Logf("%s %s: %.1f MB compressed", platformName(pi.Platform), pi.Digest, float64(pi.CompressedSize)/1e6)
		if pi.CompressedSize > maxCompressed {
			t.Errorf("%s: %d bytes compressed, over the %d MiB target", platformName(pi.Platform), pi.CompressedSize, maxCompressed>>20)
		}
		cf, _ := pi.Image.ConfigFile()
		if cf.Config.Labels["org.opencontainers.image.version"] != src.Version {
			t.Errorf("version label %q, want %q", cf.Config.Labels["org.opencontainers.image.version"], src.Version)
		}
	}
	bi, err := buildinfo.ReadFile(realBin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("berth built with %v, want CGO_ENABLED=0 and -trimpath", settings)
	}
	hasRoots := false
	for _, d := range bi.Deps {
		hasRoots = hasRoots || d.Path == "golang.org/x/crypto/x509roots/fallback"
	}
	if !hasRoots {
		t.Error("berth does not link golang.org/x/crypto/x509roots/fallback: the image has no CA roots")
	}

	// Go's build is reproducible with -trimpath: a second build of the
	// same source (relinked into another directory) gives the same image.
	o := Options{Dir: root, Platforms: []v1.Platform{imgs[0].Platform}, Source: src, BinDir: t.TempDir()}
	again, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of berth at one commit: index %s then %s", d1, d2)
	}
}

// podman runs images here with these flags (crun fails on these machines'
// hybrid cgroups; the sandbox has no CAP_SYS_RESOURCE for default ulimits).
var podmanRun = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs",
	"run", "--rm", "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

func needPodman(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_REQUIRE_PODMAN") == "1" {
				t.Fatalf("BERTH_REQUIRE_PODMAN=1 but %s is not installed: %v", tool, err)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// podmanLoad writes idx as an archive tagged tag, loads it with podman
// load and returns the name podman gave it; the tag is removed at the end.
func podmanLoad(t *testing.T, tag string, idx v1.ImageIndex) string {
	t.Helper()
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteArchive(archive, tg, idx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", "--storage-driver", "vfs", "load", "-i", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("podman load -i %s: %v\n%s", archive, err, out)
	}
	loaded := ""
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Loaded image:"); ok {
			loaded = strings.TrimSpace(rest)
		}
	}
	if !strings.HasSuffix(loaded, "/"+tag) {
		t.Fatalf("podman load named %q, want .../%s:\n%s", loaded, tag, out)
	}
	t.Cleanup(func() {
		// Only this tag: another test may hold the same image by another name.
		exec.Command("podman", "--storage-driver", "vfs", "rmi", loaded).Run()
	})
	return loaded
}

func podmanRunImage(t *testing.T, opts []string, ref string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append(append(append(append([]string{}, podmanRun...), opts...), ref), args...)
	out, err := exec.CommandContext(ctx, "podman", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman run %s %s: %v\n%s", ref, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPodmanStandin runs the stand-in in its image under podman: what a
// process gets there (the nonroot user, its home, /tmp, CA roots without
// any file for them) is what berth gets.
func TestPodmanStandin(t *testing.T) {
	needPodman(t)
	imgs, err := Images(standin(t))
	if err != nil {
		t.Fatal(err)
	}
	var host v1.Image
	for _, pi := range imgs {
		if platformName(pi.Platform) == HostPlatform() {
			host = pi.Image
		}
	}
	one := singleIndex(t, host)
	ref := podmanLoad(t, "berth-image-standin:"+standinSrc.Version, one)
	out := podmanRunImage(t, nil, ref)
	for _, want := range []string{
		"version=" + standinSrc.Version + " commit=" + standinSrc.Commit + " platform=" + HostPlatform(),
		"uid=65532 gid=65532 home=/home/nonroot",
		"tmp-writable=yes",
		"ca-roots=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the stand-in in its image printed:\n%s\nwant %q", out, want)
		}
	}
}

// TestPodmanBerth loads berth's own image as `podman load` would from
// `go run ./hack/image build --out`, and runs berth's version command in it.
func TestPodmanBerth(t *testing.T) {
	needPodman(t)
	idx, src := realImage(t)
	ref := podmanLoad(t, "berth-image-test:"+src.Version, idx)
	start := time.Now()
	out := podmanRunImage(t, nil, ref, "version", "--client")
	t.Logf("podman run %s version --client (%s):\n%s", ref, time.Since(start).Round(time.Millisecond), out)
	want := "Client Version: " + src.Version + " (commit " + src.Commit + ", "
	if src.Commit == "" {
		// Built outside a git checkout (an archive of the tree): no commit.
		want = "Client Version: " + src.Version + " (go"
	}
	if !strings.Contains(out, want) || !strings.Contains(out, HostPlatform()) {
		t.Errorf("berth version in the image printed:\n%s\nwant %q and %s", out, want, HostPlatform())
	}
	// berth resolves through PATH, as a pod's command: ["berth", ...] needs.
	out = podmanRunImage(t, []string{"--entrypoint", "berth"}, ref, "--version")
	if !strings.Contains(out, src.Version) {
		t.Errorf("berth --version through PATH printed:\n%s", out)
	}
}

// singleIndex is an index of one image, as a one-platform build gives.
func singleIndex(t *testing.T, img v1.Image) v1.ImageIndex {
	t.Helper()
	if img == nil {
		t.Fatalf("no image for %s", HostPlatform())
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: img})
}
