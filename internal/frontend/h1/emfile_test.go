package h1

import (
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
)

// failingListener fails its first Accepts with err, as net's listeners do
// when file descriptors run out.
type failingListener struct {
	net.Listener
	fails int
	err   error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: l.err}
	}
	return l.Listener.Accept()
}

// Running out of file descriptors pauses accepting instead of ending it;
// another error ends Serve.
func TestAcceptOutOfFiles(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fl := &failingListener{Listener: ln, fails: 3, err: os.NewSyscallError("accept4", errno)}
		srv := NewServer(http.HandlerFunc(echo), nil)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(fl) }()
		rc := dialRaw(t, ln.Addr().String())
		rc.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := rc.read("GET"); resp.StatusCode != 200 {
			t.Fatalf("%v: %d after the failed accepts", errno, resp.StatusCode)
		}
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Fatalf("%v: Serve returned %v", errno, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln, fails: 1, err: os.NewSyscallError("accept4", syscall.EINVAL)}
	if err := NewServer(http.HandlerFunc(echo), nil).Serve(fl); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Serve after EINVAL returned %v", err)
	}
}
