package rawconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// quietPair is a loopback TCP connection: the accepted end as a quietConn
// and the dialled end as Go's own.
func quietPair(t *testing.T) (q net.Conn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	q = Quiet(c)
	if _, ok := q.(*quietConn); !ok {
		t.Fatalf("Quiet(%T) = %T, want *quietConn", c, q)
	}
	t.Cleanup(func() { q.Close(); peer.Close() })
	return q, peer
}

func TestQuietConnBehavesLikeTCPConn(t *testing.T) {
	q, peer := quietPair(t)

	// A write larger than the socket buffers completes by waiting for the
	// reader; the bytes arrive whole and in order.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big)))); got <- b }()
	if n, err := q.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer read %d bytes, not the %d written", len(b), len(big))
	}

	// Reads wait for data.
	go func() { time.Sleep(20 * time.Millisecond); peer.Write([]byte("hello")) }()
	buf := make([]byte, 16)
	if n, err := q.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	// A read deadline ends a read with a timeout, as net.Conn's do.
	q.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := q.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	q.SetReadDeadline(time.Time{})

	// The peer's close is io.EOF.
	peer.(*net.TCPConn).CloseWrite()
	if n, err := q.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer's close = %d, %v; want io.EOF", n, err)
	}

	// CloseWrite reaches the peer.
	if err := q.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := peer.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("peer Read after CloseWrite = %d, %v; want io.EOF", n, err)
	}

	// Using it after Close is net.ErrClosed.
	q.Close()
	if _, err := q.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := q.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
}

func TestQuietConnWriteToResetPeer(t *testing.T) {
	q, peer := quietPair(t)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // a reset
	time.Sleep(10 * time.Millisecond)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = q.Write([]byte("x"))
	}
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) || oe.Timeout() {
		t.Fatalf("Write to a reset peer = %v, want a *net.OpError that is not a timeout", err)
	}
}

func TestQuietOnlyWrapsTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := Quiet(a); c != a {
		t.Fatalf("Quiet(pipe) = %T, want the pipe itself", c)
	}
}

func TestQuietConnSendBeforeRead(t *testing.T) {
	q, peer := quietPair(t)
	sq := q.(*quietConn)
	buf := make([]byte, 64)

	// The request goes out with the Read, which then waits for the answer.
	go func() {
		b := make([]byte, 4)
		io.ReadFull(peer, b)
		time.Sleep(20 * time.Millisecond)
		peer.Write(append([]byte("re:"), b...))
	}()
	sq.SendBeforeRead([]byte("ping"))
	q.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := q.Read(buf); err != nil || string(buf[:n]) != "re:ping" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	// A request larger than the socket takes at once: the rest is written
	// as the peer reads, then the answer is read.
	big := bytes.Repeat([]byte("r"), 8<<20)
	go func() {
		io.ReadFull(peer, make([]byte, len(big)))
		peer.Write([]byte("got it"))
	}()
	sq.SendBeforeRead(big)
	if n, err := q.Read(buf); err != nil || string(buf[:n]) != "got it" {
		t.Fatalf("Read after a large request = %q, %v", buf[:n], err)
	}

	// Past the deadline nothing is sent, and nothing is left to send later.
	q.SetReadDeadline(time.Now().Add(-time.Second))
	sq.SendBeforeRead([]byte("late"))
	if _, err := q.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v", err)
	}
	q.SetReadDeadline(time.Now().Add(5 * time.Second))
	go peer.Write([]byte("next"))
	if n, err := q.Read(buf); err != nil || string(buf[:n]) != "next" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := peer.Read(buf); n != 0 {
		t.Fatalf("the peer got %q, sent after its deadline", buf[:n])
	}
}

// A peer that closed the connection while it sat idle (its FIN unseen)
// answers the request with a reset: the Read ends at once, it does not
// wait for the deadline.
func TestQuietConnSendBeforeReadToClosedPeer(t *testing.T) {
	q, peer := quietPair(t)
	peer.Close()
	time.Sleep(20 * time.Millisecond) // the FIN arrives while nobody reads
	q.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	q.(*quietConn).SendBeforeRead([]byte("GET / HTTP/1.1\r\n\r\n"))
	_, err := q.Read(make([]byte, 16))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Read from a closed peer = %v after %v; want EOF or a reset at once", err, time.Since(start))
	}
}
