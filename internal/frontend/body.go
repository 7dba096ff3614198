package frontend

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-ml/berth/internal/frontend/h1"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
)

// memBody is the largest request body kept in memory, and memBudget the
// most memory all the bodies being held take together; a body over
// either is spooled to a temporary file (nginx's request buffering, with
// larger memory parts: client_body_buffer_size is 8–16 KiB there, which
// costs a file's write and read for most scoring payloads).
const (
	memBody   = 1 << 20
	memBudget = 64 << 20
)

// memHeld is the memory the bodies being held take (reserve).
var memHeld atomic.Int64

// reserve takes n bytes of memBudget, or tells there are not so many left.
func reserve(n int64) bool {
	if memHeld.Add(n) > memBudget {
		memHeld.Add(-n)
		return false
	}
	return true
}

// bodyBufs holds the buffers request bodies are read into; spoolBufs
// those spooled bodies are copied through.
var (
	bodyBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
	spoolBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
)

// reqBody is a request body read to its end before the request takes a
// replica's slot: a slow or broken upload then holds none, its framing
// errors are the client's (400, not the replica's 502), and a request on
// a stale pooled connection can be sent again.
type reqBody struct {
	mem      []byte   // the body, when in memory (nil: none, or spooled)
	bp       *[]byte  // mem's buffer, back to bodyBufs on close
	reserved int64    // of memBudget
	file     *os.File // the body, when spooled
	n        int64    // its length
}

// send is what the upstream client sends: the bytes in hand (buffered) or
// the spooled file from its start, which it can rewind to send again and
// sends with sendfile.
func (b *reqBody) send() (buffered []byte, body io.Reader, length int64) {
	if b.file != nil {
		b.file.Seek(0, io.SeekStart)
		return nil, &io.LimitedReader{R: b.file, N: b.n}, b.n
	}
	return b.mem, nil, b.n
}

// head copies the body's first limit bytes for the request log, and
// tells whether it cut some.
func (b *reqBody) head(limit int) ([]byte, bool) {
	if b.file == nil {
		return reqlog.Head(b.mem, limit)
	}
	buf := make([]byte, min(int64(limit), b.n))
	n, _ := b.file.ReadAt(buf, 0)
	return buf[:n], b.n > int64(n)
}

func (b *reqBody) close() {
	if b.bp != nil {
		if cap(*b.bp) <= memBody {
			bodyBufs.Put(b.bp)
		}
		b.bp, b.mem = nil, nil
	}
	if b.reserved != 0 {
		memHeld.Add(-b.reserved)
		b.reserved = 0
	}
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name()) // already gone but on Windows
		b.file = nil
	}
}

// readBody reads the request's body to its end: into memory up to memBody
// bytes (while memBudget lasts), to a file in dir (os.TempDir when empty)
// beyond. Errors: *bodyTooLarge over MaxBodyBytes, h1.ErrBodyTooSlow below
// the minimum rate, and otherwise the client's (a framing error, or gone)
// or the spool file's (*os.PathError). The caller closes the body.
func readBody(w http.ResponseWriter, r *http.Request, dir string) (b reqBody, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return b, nil
	}
	if r.ContentLength > MaxBodyBytes {
		return b, &bodyTooLarge{}
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	var src io.Reader = r.Body
	if _, ok := w.(*h1.Response); !ok {
		// berth's server keeps a body to the minimum rate itself; with
		// net/http's, the front end does it through the read deadline,
		// cleared once the body is read (net/http's background read would
		// otherwise end the request when it passes).
		rc := http.NewResponseController(w)
		src = &pacedBody{r: r.Body, rc: rc, start: time.Now()}
		defer rc.SetReadDeadline(time.Time{})
	}
	cl := r.ContentLength
	if cl > 0 && cl <= memBody && reserve(cl) {
		// Most bodies: the declared length in one pooled buffer.
		b.reserved = cl
		b.bp = bodyBufs.Get().(*[]byte)
		if int64(cap(*b.bp)) < cl {
			*b.bp = make([]byte, cl)
		}
		b.mem = (*b.bp)[:cl]
		if _, err := io.ReadFull(src, b.mem); err != nil {
			return b, err
		}
		b.n = cl
		return b, nil
	}
	var head []byte // what is in memory already
	if cl < 0 {
		// Chunked: into memory while it fits.
		b.bp = bodyBufs.Get().(*[]byte)
		buf := (*b.bp)[:0]
		for {
			if int64(len(buf)) == b.reserved {
				// The reserved part is full: reserve twice as much (the
				// pooled buffer may be larger; what is used is counted).
				want := min(max(2*len(buf), 16<<10), memBody)
				if len(buf) >= memBody || !reserve(int64(want)-b.reserved) {
					break
				}
				b.reserved = int64(want)
				if cap(buf) < want {
					buf = append(make([]byte, 0, want), buf...)
				}
			}
			n, err := src.Read(buf[len(buf):b.reserved])
			buf = buf[:len(buf)+n]
			*b.bp = buf
			if err == io.EOF {
				b.mem, b.n = buf, int64(len(buf))
				return b, nil
			}
			if err != nil {
				return b, err
			}
		}
		head = buf
	}
	// Spooled: what is in memory, then the rest.
	f, err := os.CreateTemp(dir, "berth-fe-body-")
	if err != nil {
		return b, err
	}
	if runtime.GOOS != "windows" {
		os.Remove(f.Name()) // nothing is left behind, even by a crash
	}
	b.file = f
	if _, err := f.Write(head); err != nil {
		return b, err
	}
	n := int64(len(head))
	limit := int64(MaxBodyBytes)
	if cl > 0 {
		limit = cl
	}
	cp := spoolBufs.Get().(*[]byte)
	m, err := io.CopyBuffer(f, &limitedBody{r: src, left: limit - n}, *cp)
	spoolBufs.Put(cp)
	n += m
	if err == nil && cl > 0 && n < cl {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return b, err
	}
	b.n = n
	// The memory part is in the file now.
	if b.bp != nil && cap(*b.bp) <= memBody {
		bodyBufs.Put(b.bp)
	}
	b.bp = nil
	memHeld.Add(-b.reserved)
	b.reserved = 0
	return b, nil
}

// limitedBody fails once more than left bytes are read.
type limitedBody struct {
	r    io.Reader
	left int64
}

type bodyTooLarge struct{}

func (*bodyTooLarge) Error() string { return "request body too large" }

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &bodyTooLarge{}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, &bodyTooLarge{}
	}
	return n, err
}

// pacedBody holds a body read through net/http's server to the minimum
// rate berth's server enforces (h1.Server.MinBodyRate): before each read
// the connection's read deadline is where the bytes so far stop being
// enough, plus a little slack.
type pacedBody struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	got   int64
	dl    time.Time
}

func (p *pacedBody) Read(b []byte) (int, error) {
	due := p.start.Add(h1.DefaultBodyGrace + time.Duration(float64(p.got)/h1.DefaultMinBodyRate*float64(time.Second)))
	if p.dl.Before(due) {
		p.dl = due.Add(time.Second)
		if p.rc.SetReadDeadline(p.dl) != nil {
			p.dl = time.Time{}
		}
	}
	n, err := p.r.Read(b)
	p.got += int64(n)
	if ne := net.Error(nil); err != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)) {
		err = h1.ErrBodyTooSlow
	}
	return n, err
}
