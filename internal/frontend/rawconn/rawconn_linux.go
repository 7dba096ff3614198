package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// quietConn is a TCP connection whose reads and writes are raw system
// calls on the non-blocking socket, waiting for readiness through Go's
// network poller as net.Conn does, but without telling the scheduler that
// a system call is under way (syscall.RawSyscall instead of Syscall).
//
// Why: every scheduler-visible system call wakes Go's sysmon thread if it
// sleeps, and sysmon then polls every 20 µs and takes the P away from any
// system call that spans two polls, handing it to another thread. With
// one core and one P, as berth-fe runs, that meant a wake-up of sysmon
// for nearly every request and the P hopping between three threads:
// context switches and futex calls that cost more than the proxying. A
// read or write on a non-blocking socket never blocks, so the scheduler
// loses nothing by not being told. See docs/frontend.md.
type quietConn struct {
	c  *net.TCPConn
	rc syscall.RawConn
	// The state of the read and the write in progress, in the conn so that
	// the functions given to rc (method values made once) need not be
	// closures allocated per call. The mutexes keep concurrent Reads (or
	// Writes), which net.Conn allows, apart.
	rmu, wmu      sync.Mutex
	rbuf, wbuf    []byte
	rn, wn        int
	rerr, werr    syscall.Errno
	readF, writeF func(uintptr) bool
	// pending: a request the next Read writes first (SendBeforeRead);
	// pendingErr: writing it failed.
	pending    []byte
	pendingErr syscall.Errno
}

// Quiet returns c as a quietConn when it is a TCP connection.
func Quiet(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quietConn{c: tc, rc: rc}
	q.readF, q.writeF = q.read, q.write
	return q
}

// SendBeforeRead has the next Read write b first, once the read is armed
// with the poller, and then wait for the peer's answer without trying a
// read that can only find nothing (Go's poller otherwise reads before it
// waits: one EAGAIN read per request). Arming first is what makes this
// safe: readiness that comes after it is never lost. Readiness that came
// before it is, so this is only for a connection whose peer sends nothing
// unasked, used by one goroutine at a time: the front end's connections to
// replicas. (A replica that closed the idle connection meanwhile answers
// the write with a reset, which is new readiness.)
func (q *quietConn) SendBeforeRead(b []byte) { q.pending = b }

func (q *quietConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.rbuf, q.rn, q.rerr = p, 0, 0
	defer func() { q.rbuf = nil }()
	err := q.rc.Read(q.readF)
	if err == nil && q.pendingErr != 0 {
		err = os.NewSyscallError("write", q.pendingErr)
		q.pending, q.pendingErr = nil, 0
		return 0, q.opError("write", err)
	}
	if err == nil && q.pending != nil {
		// The socket took only part of the request: the rest waits for
		// room, then the answer is read as usual.
		rest := q.pending
		q.pending = nil
		if _, err := q.Write(rest); err != nil {
			return 0, err
		}
		err = q.rc.Read(q.readF)
	}
	if err == nil && q.rerr != 0 {
		err = os.NewSyscallError("read", q.rerr)
	}
	if err != nil {
		q.pending = nil // not sent (the deadline had passed, or it was closed)
		return 0, q.opError("read", err)
	}
	if q.rn == 0 {
		return 0, io.EOF
	}
	return q.rn, nil
}

// read is one attempt; false asks rc to wait until the socket is readable.
func (q *quietConn) read(fd uintptr) bool {
	for len(q.pending) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&q.pending[0])), uintptr(len(q.pending)))
		switch e {
		case 0:
			q.pending = q.pending[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true // Read writes the rest
		default:
			q.pendingErr = e
			return true
		}
		if len(q.pending) == 0 {
			q.pending = nil
			return false // sent: wait for the answer
		}
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&q.rbuf[0])), uintptr(len(q.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		q.rn, q.rerr = int(r), e
		return true
	}
}

func (q *quietConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	q.wmu.Lock()
	q.wbuf, q.wn, q.werr = p, 0, 0
	err := q.rc.Write(q.writeF)
	n, errno := q.wn, q.werr
	q.wbuf = nil
	q.wmu.Unlock()
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return n, q.opError("write", err)
	}
	return n, nil
}

// write sends what is left; false asks rc to wait until it is writable.
func (q *quietConn) write(fd uintptr) bool {
	for q.wn < len(q.wbuf) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&q.wbuf[q.wn])), uintptr(len(q.wbuf)-q.wn))
		switch e {
		case 0:
			q.wn += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			q.werr = e
			return true
		}
	}
	return true
}

// opError gives errors the shape net.TCPConn's have: a *net.OpError whose
// Err is os.ErrDeadlineExceeded, net.ErrClosed or the system call's error.
func (q *quietConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok { // from RawConn: deadline or closed
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: q.c.LocalAddr(), Addr: q.c.RemoteAddr(), Err: err}
}

// ReadFrom is the TCP connection's own: a file goes out with sendfile
// (a spooled request body), as through a plain net.Conn.
func (q *quietConn) ReadFrom(r io.Reader) (int64, error) { return q.c.ReadFrom(r) }

func (q *quietConn) Close() error                       { return q.c.Close() }
func (q *quietConn) CloseWrite() error                  { return q.c.CloseWrite() }
func (q *quietConn) LocalAddr() net.Addr                { return q.c.LocalAddr() }
func (q *quietConn) RemoteAddr() net.Addr               { return q.c.RemoteAddr() }
func (q *quietConn) SetDeadline(t time.Time) error      { return q.c.SetDeadline(t) }
func (q *quietConn) SetReadDeadline(t time.Time) error  { return q.c.SetReadDeadline(t) }
func (q *quietConn) SetWriteDeadline(t time.Time) error { return q.c.SetWriteDeadline(t) }
