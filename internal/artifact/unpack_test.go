package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name string
	dir  bool
	size int64  // the header's size (default: len(body))
	body []byte // nil with a size: zeros
}

// tgz writes a tar.gz; a file whose size is larger than its body is cut
// short, as a forged header would be.
func tgz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if e.size > 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		body := e.body
		if body == nil && !e.dir {
			body = make([]byte, min(e.size, 4<<20))
		}
		if _, err := tw.Write(body); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
			t.Fatal(err)
		}
		if int64(len(body)) < h.Size {
			// A forged header: stop here, as an attacker's archive may.
			tw.Flush()
			gz.Close()
			return buf.Bytes()
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

func dirSize(t *testing.T, dir string) (n int64) {
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestUnpackRefusesArchiveBombs: an archive that unpacks beyond the limits
// (bytes or entries) is refused with the limit's name and value, before
// its content is written; Check says the same without writing anything.
func TestUnpackRefusesArchiveBombs(t *testing.T) {
	// 10 GiB in one file, from a header: refused before a byte is written.
	bomb := tgz(t, entry{name: "weights.bin", size: 10 << 30})
	// A real archive of 3 MiB of zeros, under a 2 MiB limit.
	zeros := tgz(t, entry{name: "a.bin", body: make([]byte, 1<<20)}, entry{name: "b.bin", body: make([]byte, 2<<20)})
	// 20 entries under a limit of 10.
	var many []entry
	for i := range 20 {
		many = append(many, entry{name: strings.Repeat("x", i+1), body: []byte("x")})
	}
	manyFiles := tgz(t, many...)
	for _, tc := range []struct {
		name   string
		data   []byte
		format string
		lim    Limits
		want   string
	}{
		{"10GiB header, default limits", bomb, "tar.gz", Limits{}, "unpacks to more than 8GiB, the limit for a model (--max-model-unpacked-bytes=8GiB on the server"},
		{"3MiB under 2MiB", zeros, "tar.gz", Limits{MaxUnpackedBytes: 2 << 20}, "--max-model-unpacked-bytes=2MiB"},
		{"20 entries under 10", manyFiles, "tar.gz", Limits{MaxFiles: 10}, "holds more than 10 files and folders, the limit for a model (--max-model-files=10 on the server"},
		{"a file over the limit", make([]byte, 3000), "file", Limits{MaxUnpackedBytes: 2000}, "unpacks to more than 2000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Unpack(bytes.NewReader(tc.data), tc.format, "model.bin", dir, tc.lim)
			var le *LimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) || !isRefusal(err) {
				t.Fatalf("unpack: %v; want a limit error with %q", err, tc.want)
			}
			if n, max := dirSize(t, dir), tc.lim.OrDefault().MaxUnpackedBytes; n > max {
				t.Fatalf("%d bytes were written, more than the limit of %d", n, max)
			}
			if err := Check(bytes.NewReader(tc.data), tc.format, "model.bin", tc.lim); !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check: %v", err)
			}
		})
	}
	// At the limits exactly, all is well.
	dir := t.TempDir()
	if err := Unpack(bytes.NewReader(zeros), "tar.gz", "", dir, Limits{MaxUnpackedBytes: 3 << 20, MaxFiles: 2}); err != nil {
		t.Fatal(err)
	}
	if n := dirSize(t, dir); n != 3<<20 {
		t.Fatalf("unpacked %d bytes", n)
	}
}

// TestCheckRefusesBrokenArchives: what is not a gzipped tar, or a tar
// that unpacking would fail on, is an *InvalidError that says why; a good
// archive passes.
func TestCheckRefusesBrokenArchives(t *testing.T) {
	good := tgz(t, entry{name: "m", dir: true}, entry{name: "m/weights.bin", body: []byte("weights")})
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write(b)
		gz.Close()
		return buf.Bytes()
	}
	// A tar whose first header has a wrong checksum.
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "a", Size: 1, Mode: 0o644})
	tw.Write([]byte("a"))
	tw.Close()
	badSum := raw.Bytes()
	badSum[148] ^= 0x7 // the checksum field
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-6] ^= 0xff // the gzip trailer's CRC
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not gzip", []byte("just some bytes, not an archive"), "is not a valid tar.gz archive: it is not gzip-compressed (gzip: invalid header)"},
		{"gzip, not tar", gzipped(bytes.Repeat([]byte("not a tar "), 100)), "is not a valid tar.gz archive: archive/tar: invalid tar header"},
		{"bad tar header", gzipped(badSum), "archive/tar: invalid tar header"},
		{"cut short", good[:len(good)/2], "unexpected EOF"},
		{"bad gzip checksum", corrupt, "gzip: invalid checksum"},
		{"file, then a folder inside it", tgz(t, entry{name: "a", body: []byte("x")}, entry{name: "a/b", body: []byte("y")}), `"a" is a file, and "a/b" needs it to be a folder`},
		{"folder, then a file of its name", tgz(t, entry{name: "a/b", body: []byte("x")}, entry{name: "a", body: []byte("y")}), `"a" is both a folder and a file`},
		{"a file without a name", tgz(t, entry{name: ".", body: []byte("x")}), "has no name"},
		{"a name too long", tgz(t, entry{name: strings.Repeat("n", 300), body: []byte("x")}), `entry "` + strings.Repeat("n", 100) + `"… has a name longer than 255 bytes`},
		{"a GNU long name over 1 MiB", gzipped(longNameTar()), "archive/tar: header field too long"},
		{"much data after the archive", gzipped(append(tarOf(t), make([]byte, 2<<20)...)), "of data follow the end of the tar archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(bytes.NewReader(tc.data), "tar.gz", "model", Limits{})
			var ie *InvalidError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) || !isRefusal(err) {
				t.Fatalf("got %v; want an invalid-artifact error with %q", err, tc.want)
			}
		})
	}
	if err := Check(bytes.NewReader(good), "tar.gz", "model", Limits{}); err != nil {
		t.Fatalf("a good archive: %v", err)
	}
	// Padding after the archive, and bytes after the gzip stream, as tar
	// and gzip tolerate them.
	padded := gzipped(append(tarOf(t), make([]byte, 10240)...))
	if err := Check(bytes.NewReader(append(padded, "trailing junk"...)), "tar.gz", "model", Limits{}); err != nil {
		t.Fatalf("padding and trailing bytes: %v", err)
	}
	if err := Check(strings.NewReader("weights"), "file", "model.bin", Limits{}); err != nil {
		t.Fatalf("a file: %v", err)
	}
}

// longNameTar is a tar whose first entry is a GNU long-name record of 2
// MiB, more than Go's tar reader takes (tar.Writer cannot write it).
func longNameTar() []byte {
	h := make([]byte, 512)
	copy(h, "././@LongLink")
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", 2<<20))
	copy(h[136:], "00000000000\x00")
	h[156] = 'L'
	copy(h[257:], "ustar  \x00")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return append(h, bytes.Repeat([]byte("n"), 2<<20)...)
}

func tarOf(t *testing.T) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "a", Size: 1, Mode: 0o644})
	tw.Write([]byte("a"))
	tw.Close()
	return raw.Bytes()
}

// TestUnpackKeepsSourceErrors: an error reading the artifact comes back
// as it is, not as a broken archive (it may pass on a retry).
func TestUnpackKeepsSourceErrors(t *testing.T) {
	boom := errors.New("connection reset")
	good := tgz(t, entry{name: "weights.bin", body: bytes.Repeat([]byte("w"), 100000)})
	r := io.MultiReader(bytes.NewReader(good[:len(good)/2]), &failing{boom})
	err := Unpack(r, "tar.gz", "", t.TempDir(), Limits{})
	if !errors.Is(err, boom) || isRefusal(err) {
		t.Fatalf("got %v", err)
	}
}

// TestChecked: the bytes pass through unchanged while they are checked;
// a bad artifact fails the read that reveals it (not only the last one),
// and nothing leaks when the reader is closed early.
func TestChecked(t *testing.T) {
	good := tgz(t, entry{name: "w.bin", body: bytes.Repeat([]byte("0123456789"), 200000)})
	c := Checked(bytes.NewReader(good), "tar.gz", "m", Limits{})
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("good archive: %d of %d bytes, %v", len(got), len(good), err)
	}
	// A 10 GiB header at the start of a long upload: refused long before
	// its end.
	bomb := tgz(t, entry{name: "weights.bin", size: 10 << 30})
	src := &countReader{r: io.MultiReader(bytes.NewReader(bomb), &zeroReader{})}
	c = Checked(io.LimitReader(src, 1<<30), "tar.gz", "m", Limits{})
	_, err = io.Copy(io.Discard, c)
	c.Close()
	var le *LimitError
	if !errors.As(err, &le) || src.n > 1<<20 {
		t.Fatalf("bomb: %v after %d bytes", err, src.n)
	}
	c = Checked(strings.NewReader("not gzip"), "tar.gz", "m", Limits{})
	if _, err := io.ReadAll(c); !isRefusal(err) {
		t.Fatalf("not gzip: %v", err)
	}
	c.Close()
	// Closed half way: Close returns.
	c = Checked(bytes.NewReader(good), "tar.gz", "m", Limits{})
	c.Read(make([]byte, 100))
	c.Close()
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestParseAndFormatSize(t *testing.T) {
	for in, want := range map[string]int64{"8GiB": 8 << 30, "8Gi": 8 << 30, "512MiB": 512 << 20, "1 KiB": 1024, "123": 123, "2TiB": 2 << 40} {
		if n, err := ParseSize(in); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1GiB", "8GB", "1.5GiB", "lots", "99999999999TiB"} {
		if _, err := ParseSize(bad); err == nil || !strings.Contains(err.Error(), "such as 8GiB") {
			t.Errorf("ParseSize(%q): %v", bad, err)
		}
	}
	for n, want := range map[int64]string{8 << 30: "8GiB", 3 << 20: "3MiB", 1536: "1536 bytes", 1000: "1000 bytes"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q; want %q", n, got, want)
		}
	}
}

// isRefusal: err is the artifact's own fault (invalid, or over a limit).
func isRefusal(err error) bool {
	var ie *InvalidError
	var le *LimitError
	return errors.As(err, &ie) || errors.As(err, &le)
}
