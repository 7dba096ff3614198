package e2e

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRelease runs ./hack/release.sh as a release is made: every archive,
// SBOM, the image, the chart and SHA256SUMS are written, the sums match,
// the linux/amd64 archive's berth prints the release's version, and its
// SBOM names that binary's digest and its modules.
func TestRelease(t *testing.T) {
	t.Parallel()
	helmBin(t)
	const version = "0.0.1-rc.1"
	out := t.TempDir()
	cmd := exec.Command("./hack/release.sh", "v"+version, out)
	cmd.Dir = ".."
	// Two of the six platforms: each cold cross-compile costs minutes, and
	// they all take the same path (hack/release's test checks the six).
	cmd.Env = append(os.Environ(), "BERTH_RELEASE_PLATFORMS=linux/amd64,windows/amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	var want []string
	for _, p := range []string{"linux_amd64", "windows_amd64"} {
		ext := ".tar.gz"
		if strings.HasPrefix(p, "windows") {
			ext = ".zip"
		}
		want = append(want, "berth_"+version+"_"+p+ext, "berth_"+version+"_"+p+".spdx.json")
	}
	want = append(want, "berth_"+version+"_image.tar", "berth-"+version+".tgz", "SHA256SUMS")
	entries, _ := os.ReadDir(out)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("dist holds %v, want %v", got, want)
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != len(want)-1 {
		t.Fatalf("SHA256SUMS has %d lines, want %d:\n%s", len(lines), len(want)-1, sums)
	}
	for _, l := range lines {
		sum, name, _ := strings.Cut(l, "  ")
		if s := sha256Of(t, filepath.Join(out, name)); s != sum {
			t.Errorf("SHA256SUMS says %s for %s, the file has %s", sum, name, s)
		}
	}

	// The linux/amd64 archive: berth (0755) and README.md; berth prints
	// the version.
	f, err := os.Open(filepath.Join(out, "berth_"+version+"_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	dir := t.TempDir()
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		w, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, tr)
		w.Close()
	}
	if !slices.Equal(names, []string{"berth", "README.md"}) {
		t.Fatalf("the linux/amd64 archive holds %v", names)
	}
	bin := filepath.Join(dir, "berth")
	r := exec.Command(bin, "version", "--client")
	r.Env = cleanEnv(t)
	vout, err := r.CombinedOutput()
	if err != nil || !strings.Contains(string(vout), "Client Version: "+version+" ") {
		t.Fatalf("berth version from the archive: %v\n%s", err, vout)
	}

	var sbom struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name, VersionInfo string
			Checksums         []struct{ ChecksumValue string }
		} `json:"packages"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "berth_"+version+"_linux_amd64.spdx.json"))
	if err := json.Unmarshal(b, &sbom); err != nil || sbom.SPDXVersion != "SPDX-2.3" || len(sbom.Packages) < 10 {
		t.Fatalf("SBOM: %v %+v", err, sbom)
	}
	main := sbom.Packages[0]
	if main.Name != "github.com/berth-ml/berth" || main.VersionInfo != version || len(main.Checksums) != 1 || main.Checksums[0].ChecksumValue != sha256Of(t, bin) {
		t.Errorf("the SBOM's berth package does not describe the archive's binary: %+v", main)
	}
	if !slices.ContainsFunc(sbom.Packages, func(p struct {
		Name, VersionInfo string
		Checksums         []struct{ ChecksumValue string }
	}) bool {
		return p.Name == "github.com/spf13/cobra" && p.VersionInfo != ""
	}) {
		t.Errorf("the SBOM lacks berth's modules (cobra)")
	}

	// Windows gets berth.exe in a zip; the chart carries the version.
	zr, err := zip.OpenReader(filepath.Join(out, "berth_"+version+"_windows_amd64.zip"))
	if err != nil || len(zr.File) != 2 || zr.File[0].Name != "berth.exe" {
		t.Fatalf("the windows archive: %v", err)
	}
	zr.Close()
	chart := mustHelm(t, "", "show", "chart", filepath.Join(out, "berth-"+version+".tgz"))
	if !strings.Contains(chart, "version: "+version) || !strings.Contains(chart, "appVersion: "+version) {
		t.Errorf("the packaged chart:\n%s", chart)
	}
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}
