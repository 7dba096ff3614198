// Command release writes a release of berth into a folder (hack/release.sh
// runs it after `helm package`): berth for linux, darwin and windows on
// amd64 and arm64 as archives (tar.gz, zip for windows), an SPDX SBOM per
// binary from its embedded build information, the multi-arch image as a
// docker-archive (as hack/image builds it), and SHA256SUMS over every file
// in the folder.
//
//	go run ./hack/release --version 0.3.0 --out dist
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/berth-ml/berth/internal/image"
)

// platforms are the release's, as GOOS/GOARCH.
var platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// PlatformsEnv, when set (a comma-separated list), builds only those
// platforms: the test suite makes a release of two, since every cold
// cross-compile costs minutes.
const PlatformsEnv = "BERTH_RELEASE_PLATFORMS"

func main() {
	version := flag.String("version", "", "the release's version, without a leading v (required)")
	out := flag.String("out", "dist", "the folder to write into")
	flag.Parse()
	if *version == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/release --version VERSION [--out DIR]")
		os.Exit(2)
	}
	if err := release(context.Background(), *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func release(ctx context.Context, version, out string) error {
	start := time.Now()
	src, err := image.ReadSource(ctx, ".")
	if err != nil {
		return err
	}
	if src.Dirty {
		fmt.Fprintln(os.Stderr, "release: warning: the tree has uncommitted changes; they are in this build")
	}
	src.Version = version
	bin, err := os.MkdirTemp("", "berth-release-bin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	o := image.Options{Dir: ".", Package: "./cmd/berth", Source: src, BinDir: bin, Log: os.Stderr}
	build, images := platforms, image.AllPlatforms
	if v := os.Getenv(PlatformsEnv); v != "" {
		build, images = strings.Split(v, ","), ""
		for _, p := range build {
			if strings.HasPrefix(p, "linux/") {
				images = strings.TrimPrefix(images+","+p, ",")
			}
		}
	}
	for _, p := range build {
		goos, goarch, _ := strings.Cut(p, "/")
		t := time.Now()
		exe, err := image.CompileBinary(ctx, o, goos, goarch)
		if err != nil {
			return err
		}
		base := fmt.Sprintf("berth_%s_%s_%s", version, goos, goarch)
		name := "berth"
		if goos == "windows" {
			name += ".exe"
		}
		if err := writeArchive(filepath.Join(out, base), name, exe, src.Time, goos == "windows"); err != nil {
			return err
		}
		if err := writeSBOM(filepath.Join(out, base+".spdx.json"), exe, base, version, src); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "release: %s in %s\n", p, time.Since(t).Round(time.Millisecond))
	}

	// The image, from the linux binaries just built (the same build, so Go
	// reuses them).
	ps, err := image.ParsePlatforms(images)
	if err != nil {
		return err
	}
	o.Platforms = ps
	idx, err := image.Build(ctx, o)
	if err != nil {
		return err
	}
	tag, err := image.ParseTag("berth:" + strings.ReplaceAll(version, "+", "_"))
	if err != nil {
		return err
	}
	if err := image.WriteArchive(filepath.Join(out, "berth_"+version+"_image.tar"), tag, idx); err != nil {
		return err
	}
	if err := writeSums(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "release: %s written to %s in %s\n", version, out, time.Since(start).Round(time.Second))
	return nil
}

// writeArchive puts the binary (as name) and README.md into base.tar.gz, or
// base.zip, every entry with the commit's time, so the same commit gives
// the same archive.
func writeArchive(base, name, exe string, mtime time.Time, zipped bool) error {
	files := []struct {
		name string
		path string
		mode int64
	}{{name, exe, 0o755}, {"README.md", "README.md", 0o644}}
	var buf bytes.Buffer
	if zipped {
		zw := zip.NewWriter(&buf)
		for _, f := range files {
			h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime.UTC()}
			h.SetMode(os.FileMode(f.mode))
			w, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			if err := copyFile(w, f.path); err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return err
		}
		return os.WriteFile(base+".zip", buf.Bytes(), 0o644)
	}
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		st, err := os.Stat(f.path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: st.Size(), ModTime: mtime.UTC(), Typeflag: tar.TypeReg,
			Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if err := copyFile(tw, f.path); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(base+".tar.gz", buf.Bytes(), 0o644)
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// spdxPackage is a package of an SPDX 2.3 document.
type spdxPackage struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	CopyrightText    string         `json:"copyrightText"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// writeSBOM writes an SPDX 2.3 JSON document for the binary from the build
// information Go embeds in it (what `go version -m` prints): the main
// module, every dependency module with its version, and the Go toolchain.
func writeSBOM(path, exe, name, version string, src image.Source) error {
	info, err := buildinfo.ReadFile(exe)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(exe)
	if err != nil {
		return err
	}
	pkg := func(id, name, version, purl string) spdxPackage {
		return spdxPackage{SPDXID: id, Name: name, VersionInfo: version, DownloadLocation: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			ExternalRefs: []spdxRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: purl}}}
	}
	main := pkg("SPDXRef-Package-berth", info.Main.Path, version, "pkg:golang/"+info.Main.Path+"@v"+version)
	main.DownloadLocation = image.SourceURL
	main.Checksums = []spdxChecksum{{Algorithm: "SHA256", Value: sum}}
	var settings []string
	for _, s := range info.Settings {
		settings = append(settings, s.Key+"="+s.Value)
	}
	main.Comment = "the berth binary; commit " + src.Commit + "; build settings: " + strings.Join(settings, " ")
	goVersion := strings.TrimPrefix(info.GoVersion, "go")
	pkgs := []spdxPackage{main, pkg("SPDXRef-Package-go", "go", goVersion, "pkg:golang/stdlib@"+goVersion)}
	rels := []spdxRelationship{{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID}, {main.SPDXID, "DEPENDS_ON", "SPDXRef-Package-go"}}
	deps := slices.Clone(info.Deps)
	slices.SortFunc(deps, func(a, b *debug.Module) int { return strings.Compare(a.Path, b.Path) })
	for i, d := range deps {
		if d.Replace != nil {
			d = d.Replace
		}
		p := pkg(fmt.Sprintf("SPDXRef-Package-%d", i+1), d.Path, d.Version, "pkg:golang/"+d.Path+"@"+d.Version)
		if d.Sum != "" {
			p.Comment = "go.sum hash " + d.Sum
		}
		pkgs = append(pkgs, p)
		rels = append(rels, spdxRelationship{main.SPDXID, "DEPENDS_ON", p.SPDXID})
	}
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              name,
		"documentNamespace": image.SourceURL + "/releases/" + version + "/" + name + ".spdx.json",
		"creationInfo": map[string]any{
			"created":  src.Time.UTC().Format(time.RFC3339),
			"creators": []string{"Tool: berth-hack-release", "Organization: Berth"},
		},
		"packages":      pkgs,
		"relationships": rels,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fileSHA256(path string) (string, error) {
	h := sha256.New()
	if err := copyFile(h, path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeSums writes SHA256SUMS (`sha256sum -c` reads it) over every file in
// dir but itself.
func writeSums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "SHA256SUMS" {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, e.Name())
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}
