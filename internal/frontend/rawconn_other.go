//go:build !linux

package frontend

import "net"

// quiet is the identity outside Linux; see rawconn_linux.go.
func quiet(c net.Conn) net.Conn { return c }
