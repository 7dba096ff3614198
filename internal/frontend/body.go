package frontend

import (
	"io"
	"net/http"
	"sync"
)

// smallBody is the largest body kept in memory so a request on a stale
// pooled connection can be sent again on a new one.
const smallBody = 64 << 10

// bodyBufs holds the buffers small request bodies are read into.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readSmallBody reads a request body of known length up to smallBody into
// a buffer from bodyBufs, bp, to be put back when the request is done.
// Other bodies are left to stream (buffered and bp nil).
func readSmallBody(r *http.Request) (buffered []byte, bp *[]byte, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength < 0 || r.ContentLength > smallBody {
		return nil, nil, nil
	}
	bp = bodyBufs.Get().(*[]byte)
	if int64(cap(*bp)) < r.ContentLength {
		*bp = make([]byte, r.ContentLength)
	}
	b := (*bp)[:r.ContentLength]
	if _, err := io.ReadFull(r.Body, b); err != nil {
		bodyBufs.Put(bp)
		return nil, nil, err
	}
	return b, bp, nil
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
