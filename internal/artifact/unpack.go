package artifact

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Unpack materializes an artifact in dir: a tar.gz is extracted (regular
// files and folders only, every path kept inside dir), any other format is
// written as one file named fileName. It stops with a *LimitError as soon
// as the artifact would exceed lim (zero fields: the defaults), and with an
// *InvalidError if the archive is broken; errors reading r or writing dir
// come back as they are.
func Unpack(r io.Reader, format, fileName, dir string, lim Limits) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return walk(r, format, fileName, lim, diskSink{root: dir})
}

// Check reads an artifact as Unpack does and writes nothing: it returns
// the error Unpack would (a *LimitError or an *InvalidError), except for
// what only the disk can refuse (space, permissions). Conflicting paths (a
// file where the archive also wants a folder) are refused here too.
func Check(r io.Reader, format, fileName string, lim Limits) error {
	return walk(r, format, fileName, lim, &checkSink{kinds: map[string]bool{}})
}

// sink receives what an artifact unpacks to; rel is a cleaned,
// slash-separated path inside the destination ("" for its root).
type sink interface {
	dir(rel string) error
	// file must read r to its end.
	file(rel string, r io.Reader) error
}

// maxTrailing bounds the data a gzip stream may hold after the end of its
// tar archive (tar writers pad to a record: 10 KiB for GNU tar).
const maxTrailing = 1 << 20

// maxNameBytes is the longest file or folder name file systems take.
const maxNameBytes = 255

func walk(r io.Reader, format, fileName string, lim Limits, s sink) error {
	lim = lim.OrDefault()
	src := &errReader{r: r}
	// classify tells the source's and the sink's errors (kept as they are)
	// from the archive's own (an *InvalidError).
	classify := func(err error) error {
		if src.err != nil {
			return src.err
		}
		if se, ok := errors.AsType[sinkError](err); ok {
			return se.error
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &InvalidError{Format: format, Err: err}
	}
	if format != "tar.gz" {
		name := filepath.Base(filepath.Clean("/" + fileName))
		if name == "/" || name == "." {
			return &InvalidError{Format: format, Err: fmt.Errorf("file name %s is not valid", quote(fileName))}
		}
		body := &countingReader{r: src, max: lim.MaxUnpackedBytes}
		if err := s.file(name, body); err != nil {
			if body.over {
				return &LimitError{Flag: FlagMaxUnpackedBytes, Max: lim.MaxUnpackedBytes}
			}
			return classify(err)
		}
		return nil
	}
	gz, err := gzip.NewReader(src)
	if err != nil {
		if src.err != nil {
			return src.err
		}
		return &InvalidError{Format: format, Err: fmt.Errorf("it is not gzip-compressed (%v)", err)}
	}
	tr := tar.NewReader(gz)
	var total int64
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return classify(err)
		}
		if entries >= lim.MaxFiles {
			return &LimitError{Flag: FlagMaxFiles, Max: int64(lim.MaxFiles)}
		}
		rel := strings.TrimPrefix(filepath.ToSlash(filepath.Clean("/"+h.Name)), "/")
		for _, part := range strings.Split(rel, "/") {
			if len(part) > maxNameBytes {
				return &InvalidError{Format: format, Err: fmt.Errorf("entry %s has a name longer than %d bytes", quote(h.Name), maxNameBytes)}
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := s.dir(rel); err != nil {
				return classify(err)
			}
		case tar.TypeReg:
			if rel == "" {
				return &InvalidError{Format: format, Err: fmt.Errorf("file entry %s has no name", quote(h.Name))}
			}
			// The header says the size: an archive bomb is refused before
			// a byte of it is unpacked.
			if total += h.Size; h.Size < 0 || total > lim.MaxUnpackedBytes {
				return &LimitError{Flag: FlagMaxUnpackedBytes, Max: lim.MaxUnpackedBytes}
			}
			if err := s.file(rel, tr); err != nil {
				return classify(err)
			}
		}
	}
	// Read the gzip stream to its end, which checks its checksum; a little
	// padding may follow the archive, and bytes that are not gzip after a
	// complete stream are ignored, as gzip itself does.
	n, err := io.Copy(io.Discard, io.LimitReader(gz, maxTrailing+1))
	if err != nil && !errors.Is(err, gzip.ErrHeader) {
		return classify(err)
	}
	if n > maxTrailing {
		return &InvalidError{Format: format, Err: fmt.Errorf("more than %s of data follow the end of the tar archive", FormatSize(maxTrailing))}
	}
	return nil
}

// quote quotes a name from an archive for a message, cut short: a tar
// name can be a megabyte long.
func quote(name string) string {
	const most = 100
	if len(name) > most {
		return strconv.Quote(strings.ToValidUTF8(name[:most], "")) + "…"
	}
	return strconv.Quote(name)
}

// errReader keeps the first error of the reader it wraps.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// countingReader fails once more than max bytes came through.
type countingReader struct {
	r    io.Reader
	n    int64
	max  int64
	over bool
}

var errTooLarge = errors.New("too large")

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n += int64(n); c.n > c.max {
		c.over = true
		return 0, errTooLarge
	}
	return n, err
}

// sinkError marks an error of the sink (the disk), as opposed to one
// reading the artifact.
type sinkError struct{ error }

func (e sinkError) Unwrap() error { return e.error }

type diskSink struct{ root string }

func (d diskSink) dir(rel string) error {
	if err := os.MkdirAll(filepath.Join(d.root, filepath.FromSlash(rel)), 0o755); err != nil {
		return sinkError{err}
	}
	return nil
}

func (d diskSink) file(rel string, r io.Reader) error {
	p := filepath.Join(d.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return sinkError{err}
	}
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return sinkError{err}
	}
	_, err = io.Copy(sinkWriter{out}, r)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = sinkError{cerr}
	}
	return err
}

// sinkWriter marks errors writing w as the sink's.
type sinkWriter struct{ w io.Writer }

func (s sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = sinkError{err}
	}
	return n, err
}

// checkSink unpacks nothing; it tracks which paths are files and which are
// folders, so that it refuses what a disk would.
type checkSink struct{ kinds map[string]bool } // path → is a folder

func (c *checkSink) add(rel string, isDir bool) error {
	if rel == "" {
		if !isDir {
			return errors.New("a file entry has no name")
		}
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		if dir, seen := c.kinds[parent]; seen && !dir {
			return fmt.Errorf("%s is a file, and %s needs it to be a folder", quote(parent), quote(rel))
		}
		c.kinds[parent] = true
	}
	if dir, seen := c.kinds[rel]; seen && dir != isDir {
		if isDir {
			return fmt.Errorf("%s is both a file and a folder", quote(rel))
		}
		return fmt.Errorf("%s is both a folder and a file", quote(rel))
	}
	c.kinds[rel] = isDir
	return nil
}

func (c *checkSink) dir(rel string) error { return c.add(rel, true) }

func (c *checkSink) file(rel string, r io.Reader) error {
	if err := c.add(rel, false); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, r)
	return err
}
