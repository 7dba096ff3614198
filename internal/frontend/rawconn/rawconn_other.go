//go:build !linux

package rawconn

import "net"

// Quiet is the identity outside Linux; see rawconn_linux.go.
func Quiet(c net.Conn) net.Conn { return c }
