package image

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The stand-in (testdata/standin) is built once for both platforms and
// shared: it exercises everything but berth's own compile in seconds.
var (
	root        string
	standinSrc  = Source{Version: "1.2.3-test", Commit: "0123456789abcdef0123456789abcdef01234567", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	standinIdx  v1.ImageIndex
	standinErr  error
	bothArchs   []v1.Platform
	standinOpts Options
)

func TestMain(m *testing.M) {
	var err error
	root, err = filepath.Abs("../..")
	if err != nil {
		log.Fatal(err)
	}
	bothArchs, err = ParsePlatforms(AllPlatforms)
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "image-test")
	if err != nil {
		log.Fatal(err)
	}
	standinOpts = Options{
		Dir:       root,
		Package:   "./internal/image/testdata/standin",
		Platforms: bothArchs,
		Source:    standinSrc,
		BinDir:    filepath.Join(tmp, "bin"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	standinIdx, standinErr = Build(ctx, standinOpts)
	cancel()
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func standin(t *testing.T) v1.ImageIndex {
	t.Helper()
	if standinErr != nil {
		t.Fatalf("building the stand-in image: %v", standinErr)
	}
	return standinIdx
}

func TestReproducible(t *testing.T) {
	first := standin(t)
	// Again from scratch: new binaries, new layers.
	o := standinOpts
	o.BinDir = t.TempDir()
	second, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		m1, _ := first.RawManifest()
		m2, _ := second.RawManifest()
		t.Fatalf("two builds of one source gave two index digests:\n%s %s\n%s %s", d1, m1, d2, m2)
	}
	imgs, err := Images(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("%d images, want 2", len(imgs))
	}
	// The base layer is shared by the platforms.
	var bases []v1.Hash
	for _, pi := range imgs {
		ls, _ := pi.Image.Layers()
		d, _ := ls[0].Digest()
		bases = append(bases, d)
	}
	if bases[0] != bases[1] {
		t.Errorf("base layers differ across platforms: %v", bases)
	}

	// Listing the platforms in another order gives the same index.
	ps, err := ParsePlatforms("linux/arm64, linux/amd64,linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || platformName(ps[0]) != "linux/amd64" || platformName(ps[1]) != "linux/arm64" {
		t.Errorf("ParsePlatforms order: %v, want %v", ps, bothArchs)
	}
}

func TestUnknownPlatform(t *testing.T) {
	for _, p := range []string{"linux/sparc99", "windows/amd64", "foo", "linux/amd64,darwin/arm64", ""} {
		_, err := ParsePlatforms(p)
		if err == nil {
			t.Errorf("ParsePlatforms(%q): no error", p)
			continue
		}
		if !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
			t.Errorf("ParsePlatforms(%q): %v: does not list the supported platforms", p, err)
		}
		if want := strings.Split(p, ",")[len(strings.Split(p, ","))-1]; p != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", want)) {
			t.Errorf("ParsePlatforms(%q): %v: does not name %q", p, err, want)
		}
	}
	// Build refuses before compiling anything.
	bin := t.TempDir()
	start := time.Now()
	_, err := Build(context.Background(), Options{Dir: root, Package: "./internal/image/testdata/standin", Source: standinSrc, BinDir: bin,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "sparc99"}}})
	if err == nil || !strings.Contains(err.Error(), `"linux/sparc99"`) {
		t.Fatalf("Build(linux/sparc99): %v", err)
	}
	if entries, _ := os.ReadDir(bin); len(entries) > 0 || time.Since(start) > 5*time.Second {
		t.Errorf("Build(linux/sparc99) compiled before refusing (%v, %d entries)", time.Since(start), len(entries))
	}
}

// layerFiles reads an image's filesystem (all layers flattened).
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	files := map[string]*tar.Header{}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = h
		}
		rc.Close()
	}
	return files
}

func readFile(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", path, err)
		}
		if h.Name == strings.TrimPrefix(path, "/") {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func TestImageContents(t *testing.T) {
	imgs, err := Images(standin(t))
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, pi := range imgs {
		t.Run(platformName(pi.Platform), func(t *testing.T) {
			cf, err := pi.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if cf.OS != pi.Platform.OS || cf.Architecture != pi.Platform.Architecture {
				t.Errorf("config platform %s/%s, index says %s", cf.OS, cf.Architecture, platformName(pi.Platform))
			}
			if c.User != "65532:65532" {
				t.Errorf("User %q", c.User)
			}
			if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/berth"}) || len(c.Cmd) != 0 {
				t.Errorf("Entrypoint %q Cmd %q", c.Entrypoint, c.Cmd)
			}
			if !slices.Equal(c.Env, []string{"PATH=/usr/local/bin:/usr/bin:/bin"}) || c.WorkingDir != "/" {
				t.Errorf("Env %q WorkingDir %q", c.Env, c.WorkingDir)
			}
			for k, v := range map[string]string{
				"org.opencontainers.image.source":   "https://github.com/berth-ml/berth",
				"org.opencontainers.image.revision": standinSrc.Commit,
				"org.opencontainers.image.version":  standinSrc.Version,
				"org.opencontainers.image.title":    "berth",
			} {
				if c.Labels[k] != v {
					t.Errorf("label %s=%q, want %q", k, c.Labels[k], v)
				}
			}
			if !cf.Created.Equal(standinSrc.Time) {
				t.Errorf("Created %v, want the source's time %v", cf.Created, standinSrc.Time)
			}
			for _, h := range cf.History {
				if !h.Created.Equal(standinSrc.Time) {
					t.Errorf("history %q created %v", h.CreatedBy, h.Created)
				}
			}
			if pi.CompressedSize <= 0 {
				t.Errorf("compressed size %d", pi.CompressedSize)
			}

			files := layerFiles(t, pi.Image)
			for p, h := range files {
				if !h.ModTime.Equal(standinSrc.Time) || h.Uname == "" || h.Gname == "" {
					t.Errorf("%s: mtime %v, owner %q:%q", p, h.ModTime, h.Uname, h.Gname)
				}
			}
			want := []struct {
				path       string
				typ        byte
				mode       int64
				uid, gid   int
				uname      string
				nonEmpty   bool
				executable bool
			}{
				{"tmp", tar.TypeDir, 0o1777, 0, 0, "root", false, false},
				{"home/nonroot", tar.TypeDir, 0o700, 65532, 65532, "nonroot", false, false},
				{"etc/passwd", tar.TypeReg, 0o644, 0, 0, "root", true, false},
				{"etc/group", tar.TypeReg, 0o644, 0, 0, "root", true, false},
				{"usr/local/bin/berth", tar.TypeReg, 0o755, 0, 0, "root", true, true},
			}
			for _, w := range want {
				h := files[w.path]
				if h == nil {
					t.Errorf("/%s missing", w.path)
					continue
				}
				if h.Typeflag != w.typ || h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid || h.Uname != w.uname {
					t.Errorf("/%s: type %c mode %o owner %d:%d (%s), want %c %o %d:%d (%s)", w.path, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, w.typ, w.mode, w.uid, w.gid, w.uname)
				}
				if w.nonEmpty && h.Size == 0 {
					t.Errorf("/%s is empty", w.path)
				}
			}
			passwd := string(readFile(t, pi.Image, "/etc/passwd"))
			if !strings.Contains(passwd, "nonroot:x:65532:65532:") || !strings.Contains(passwd, "root:x:0:0:") {
				t.Errorf("/etc/passwd:\n%s", passwd)
			}
			if group := string(readFile(t, pi.Image, "/etc/group")); !strings.Contains(group, "nonroot:x:65532:") {
				t.Errorf("/etc/group:\n%s", group)
			}

			// The binary is a static executable for the image's platform.
			bin := filepath.Join(t.TempDir(), "berth")
			if err := os.WriteFile(bin, readFile(t, pi.Image, BinaryPath), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("%s is not an ELF executable: %v", BinaryPath, err)
			}
			defer f.Close()
			if f.Machine != machines[pi.Platform.Architecture] || f.Type != elf.ET_EXEC {
				t.Errorf("%s: machine %v type %v", BinaryPath, f.Machine, f.Type)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has an interpreter: not static", BinaryPath)
				}
			}
		})
	}
}

func TestParsePushTag(t *testing.T) {
	for _, bad := range []string{"berth", "berth:0.3", "ghcr.io/Berth/berth:1", "ghcr.io/berth-ml/berth:", "ghcr.io/berth-ml/berth:bad tag", "ghcr.io/berth-ml/berth@sha256:00"} {
		if _, err := ParsePushTag(bad); err == nil {
			t.Errorf("ParsePushTag(%q): no error", bad)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ParsePushTag(%q): %v: does not name the tag", bad, err)
		}
	}
	if _, err := ParsePushTag("127.0.0.1:5000/berth-ml/berth:0.3.0"); err != nil {
		t.Error(err)
	}
}

func TestPushAndPull(t *testing.T) {
	idx := standin(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tag, err := ParsePushTag(host + "/berth-ml/berth:" + standinSrc.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPush(context.Background(), tag); err != nil {
		t.Fatalf("CheckPush to a registry that takes pushes: %v", err)
	}
	if err := Push(context.Background(), tag, idx); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	got, _ := pulled.Digest()
	if got != want {
		t.Fatalf("pulled index %s, pushed %s", got, want)
	}
	imgs, err := Images(idx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range imgs {
		p := pi.Platform
		img, err := remote.Image(tag, remote.WithPlatform(p))
		if err != nil {
			t.Fatalf("%s: %v", platformName(p), err)
		}
		if d, _ := img.Digest(); d != pi.Digest {
			t.Errorf("%s: pulled %s, pushed %s", platformName(p), d, pi.Digest)
		}
		// Layers are there too, not only manifests.
		ls, _ := img.Layers()
		for _, l := range ls {
			d, _ := l.Digest()
			if _, err := remote.Layer(tag.Context().Digest(d.String())); err != nil {
				t.Errorf("%s: layer %s: %v", platformName(p), d, err)
			}
		}
	}

	// What build --oci-layout writes, push --from reads: the same index.
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, tag, idx); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := back.Digest(); d != want {
		t.Errorf("layout gave index %s, want %s", d, want)
	}
}

// refusing is a registry that lets clients look but not write.
func refusing(status int, body string) http.Handler {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
			return
		}
		reg.ServeHTTP(w, r)
	})
}

func TestPushRefused(t *testing.T) {
	idx := standin(t)
	for _, tc := range []struct {
		status int
		body   string
		want   []string
	}{
		{http.StatusUnauthorized, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, []string{"401", "not logged in", "UNAUTHORIZED"}},
		{http.StatusForbidden, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, []string{"403", "denied", "DENIED"}},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(refusing(tc.status, tc.body))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			tag, _ := ParsePushTag(host + "/berth-ml/berth:x")
			for what, err := range map[string]error{"Push": Push(context.Background(), tag, idx), "CheckPush": CheckPush(context.Background(), tag)} {
				var pe *PushError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: %v (%T), want a *PushError", what, err, err)
				}
				msg := err.Error()
				for _, w := range append(tc.want, "registry "+host) {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: error %q does not say %q", what, msg, w)
					}
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		host := strings.TrimPrefix(srv.URL, "http://")
		srv.Close() // nothing listens there now
		tag, _ := ParsePushTag(host + "/berth-ml/berth:x")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := Push(ctx, tag, idx)
		if err == nil || !strings.Contains(err.Error(), "registry "+host) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("Push to a closed port: %v", err)
		}
		if err := CheckPush(ctx, tag); err == nil || !strings.Contains(err.Error(), "registry "+host) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("CheckPush of a closed port: %v", err)
		}
	})
}

func TestArchive(t *testing.T) {
	idx := standin(t)
	imgs, err := Images(idx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// One platform: the image under the tag.
	one := singleIndex(t, imgs[0].Image)
	tag, _ := name.NewTag("berth:" + standinSrc.Version)
	path := filepath.Join(dir, "one.tar")
	if err := WriteArchive(path, tag, one); err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, loaded, imgs[0].Image)

	// Several: the host's platform under the tag, each under TAG-ARCH.
	path = filepath.Join(dir, "both.tar")
	if err := WriteArchive(path, tag, idx); err != nil {
		t.Fatal(err)
	}
	for _, pi := range imgs {
		at, _ := name.NewTag(tag.String() + "-" + pi.Platform.Architecture)
		loaded, err := tarball.ImageFromPath(path, &at)
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		sameImage(t, loaded, pi.Image)
		if platformName(pi.Platform) == HostPlatform() {
			loaded, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				t.Fatal(err)
			}
			sameImage(t, loaded, pi.Image)
		}
	}
}

// sameImage compares what a docker-archive keeps of an image: its config
// (so the image ID) and its layers.
func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	gc, _ := got.ConfigName()
	wc, _ := want.ConfigName()
	if gc != wc {
		t.Errorf("config %s, want %s", gc, wc)
	}
	gl, _ := got.Layers()
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		g, _ := gl[i].Digest()
		w, _ := wl[i].Digest()
		if g != w {
			t.Errorf("layer %d: %s, want %s", i, g, w)
		}
	}
}
