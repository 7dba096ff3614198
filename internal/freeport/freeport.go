// Package freeport finds free TCP ports on loopback for the servers Berth
// and its tests start (a port the kernel handed out and that was closed
// again; another process may still take it before it is used).
package freeport

import (
	"net"
)

// Addr returns a free "127.0.0.1:PORT".
func Addr() (string, error) { return AddrOn("127.0.0.1") }

// AddrOn returns a free "HOST:PORT" on another loopback address.
func AddrOn(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Port returns a free port on 127.0.0.1.
func Port() (int, error) {
	ps, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// Ports returns n distinct free ports on 127.0.0.1 (all held open until
// every one is found, so none repeats).
func Ports(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
