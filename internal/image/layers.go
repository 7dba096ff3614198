package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identities inside the image.
const (
	BinaryPath = "/usr/local/bin/berth"
	NonrootUID = 65532
	NonrootGID = 65532
	HomeDir    = "/home/nonroot"
)

// entry is one file or directory of a layer's filesystem.
type entry struct {
	path     string // relative, no leading "/"; directories without trailing "/"
	dir      bool
	mode     int64 // permission bits, plus sticky (01000) for /tmp
	uid, gid int
	data     []byte // files held in memory
	file     string // or a file on disk (the binary)
}

func owner(id int) string {
	if id == NonrootUID {
		return "nonroot"
	}
	return "root"
}

// layerTar writes entries as an uncompressed tar: sorted by path (a
// directory sorts before what it holds), every entry with the same
// modification time and explicit uid/gid/uname/gname, so the bytes depend
// only on the contents.
func layerTar(entries []entry, mtime time.Time) ([]byte, error) {
	sorted := append([]entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].path < sorted[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range sorted {
		h := &tar.Header{
			Name:    e.path,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			Uname:   owner(e.uid),
			Gname:   owner(e.gid),
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		var body io.Reader
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case e.file != "":
			f, err := os.Open(e.file)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Size, body = tar.TypeReg, st.Size(), f
		default:
			h.Typeflag, h.Size, body = tar.TypeReg, int64(len(e.data)), bytes.NewReader(e.data)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.path, err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", e.path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newLayer makes entries into an OCI gzip layer (of layerTar's tar). The
// gzip is computed once and kept (WithCompressedCaching): writing an
// archive, a layout and a push read it again.
func newLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	tarBytes, err := layerTar(entries, mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching,
	)
}

func passwd() string {
	return strings.Join([]string{
		"root:x:0:0:root:/root:/sbin/nologin",
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:%s:/sbin/nologin", NonrootUID, NonrootGID, HomeDir),
		"",
	}, "\n")
}

func group() string {
	return strings.Join([]string{
		"root:x:0:",
		fmt.Sprintf("nonroot:x:%d:", NonrootGID),
		"",
	}, "\n")
}

// baseEntries is the filesystem every platform shares (so its layer has
// one digest across the index): the users, a world-writable /tmp, the
// home of the nonroot user, and the directories the binary goes in.
// nsswitch.conf makes Go's resolver read /etc/hosts before DNS, as glibc
// systems do, so "localhost" and the hosts Kubernetes writes resolve
// without a DNS query.
func baseEntries() []entry {
	dir := func(p string, mode int64) entry { return entry{path: p, dir: true, mode: mode} }
	file := func(p, s string) entry { return entry{path: p, mode: 0o644, data: []byte(s)} }
	return []entry{
		dir("etc", 0o755),
		file("etc/group", group()),
		file("etc/nsswitch.conf", "hosts: files dns\n"),
		file("etc/passwd", passwd()),
		dir("home", 0o755),
		{path: strings.TrimPrefix(HomeDir, "/"), dir: true, mode: 0o700, uid: NonrootUID, gid: NonrootGID},
		dir("root", 0o700),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
	}
}

// binaryEntries is the layer holding the compiled berth (with its parent
// directories, so the layer stands on its own).
func binaryEntries(binary string) []entry {
	return []entry{
		{path: "usr", dir: true, mode: 0o755},
		{path: "usr/local", dir: true, mode: 0o755},
		{path: "usr/local/bin", dir: true, mode: 0o755},
		{path: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, file: binary},
	}
}
