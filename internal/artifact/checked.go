package artifact

import (
	"errors"
	"io"
)

// Checked passes r through while Check reads the same bytes, so that an
// upload is checked as it is stored, in one pass. Once Check finds the
// artifact invalid or over a limit, Read fails with Check's error (a
// *InvalidError or *LimitError), and the store gives up the upload; the
// read that reaches the end of r returns io.EOF only if the whole artifact
// passed. Close it when done (it ends the checking goroutine).
func Checked(r io.Reader, format, fileName string, lim Limits) *CheckedReader {
	pr, pw := io.Pipe()
	c := &CheckedReader{r: r, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := Check(pr, format, fileName, lim)
		if err == nil {
			// Check may stop before the end (bytes after a gzip stream):
			// take the rest, so that writes never block.
			_, err = io.Copy(io.Discard, pr)
		}
		if errors.Is(err, errStopped) {
			err = nil // Close came first; nothing to report
		}
		c.err = err
		pr.CloseWithError(err)
	}()
	return c
}

// CheckedReader is the reader Checked returns.
type CheckedReader struct {
	r      io.Reader
	pw     *io.PipeWriter
	done   chan struct{}
	err    error // Check's result, once done is closed
	closed bool
}

var errStopped = errors.New("artifact check stopped")

func (c *CheckedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if _, werr := c.pw.Write(p[:n]); werr != nil {
			<-c.done
			if c.err != nil {
				return 0, c.err
			}
			return 0, werr
		}
	}
	if err == io.EOF {
		c.pw.Close()
		<-c.done
		if c.err != nil {
			return 0, c.err
		}
	}
	return n, err
}

// Close stops the check if it still runs and waits for it.
func (c *CheckedReader) Close() error {
	if !c.closed {
		c.closed = true
		c.pw.CloseWithError(errStopped)
		<-c.done
	}
	return nil
}
