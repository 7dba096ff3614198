package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PlatformImage summarises one platform's image of an index.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
	Digest   v1.Hash
	// CompressedSize is the sum of the compressed layers' sizes: what a
	// node pulls (the config and manifest add about a kilobyte).
	CompressedSize int64
}

// Images lists the index's per-platform images, in the index's order.
func Images(idx v1.ImageIndex) ([]PlatformImage, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []PlatformImage
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		var size int64
		for _, l := range layers {
			s, err := l.Size()
			if err != nil {
				return nil, err
			}
			size += s
		}
		pi := PlatformImage{Image: img, Digest: d.Digest, CompressedSize: size}
		if d.Platform != nil {
			pi.Platform = *d.Platform
		}
		out = append(out, pi)
	}
	return out, nil
}

// ParseTag reads an image tag such as berth:0.3.0 or
// registry.example.com/team/berth:0.3.0.
func ParseTag(s string) (name.Tag, error) {
	t, err := name.NewTag(s)
	if err != nil {
		return name.Tag{}, fmt.Errorf("invalid image tag %q: %v", s, err)
	}
	return t, nil
}

// WriteArchive writes a docker-archive (`docker save`'s format, which
// `podman load` and `docker load` read) with the index's images tagged
// tag. Such an archive holds images, not an index: with one platform the
// image is tagged; with several, the host's platform (HostPlatform)
// carries the tag and each platform is also tagged TAG-ARCH (berth:0.3.0-arm64),
// so one `podman load` gives a runnable berth:0.3.0 and the other
// architectures beside it. The index itself goes to WriteLayout or Push.
func WriteArchive(path string, tag name.Tag, idx v1.ImageIndex) error {
	imgs, err := Images(idx)
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	host := HostPlatform()
	for _, pi := range imgs {
		if len(imgs) == 1 || platformName(pi.Platform) == host {
			refs[tag] = pi.Image
		}
		if len(imgs) > 1 {
			at, err := name.NewTag(tag.Context().String() + ":" + tag.TagStr() + "-" + pi.Platform.Architecture)
			if err != nil {
				return err
			}
			refs[at] = pi.Image
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// WriteLayout writes the index to an OCI image layout at dir, replacing
// what was there. The layout's index.json holds one entry, the image index,
// named by tag (org.opencontainers.image.ref.name), so tools that read a
// layout with one image (`podman load -i DIR`, skopeo's oci:DIR) take it
// and pick their platform from it.
func WriteLayout(dir string, tag name.Tag, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.String(),
	})); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	return nil
}

// ReadLayout reads back the image index of a layout WriteLayout wrote.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("OCI layout %s: want one image index (as build --oci-layout writes), found %d entries", dir, len(m.Manifests))
	}
	return top.ImageIndex(m.Manifests[0].Digest)
}
