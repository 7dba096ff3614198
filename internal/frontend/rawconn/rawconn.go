// Package rawconn has the front end's TCP connections whose reads and
// writes are raw system calls the scheduler is not told about (Linux; the
// identity elsewhere). They serve the scoring listeners on berth's HTTP/1.1
// server and the connections to replicas; see docs/frontend.md, "Session 3".
package rawconn

import "net"

// Listener hands out its connections as Quiet ones.
type Listener struct{ net.Listener }

func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Quiet(c), nil
}
