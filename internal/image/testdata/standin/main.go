// Command standin is a tiny stand-in for berth in internal/image's tests:
// it compiles in seconds for every platform, and run in the image it tells
// what the container gives a process (user, HOME, a writable /tmp, the CA
// roots berth gets from x509roots/fallback).
package main

import (
	"crypto/x509"
	"fmt"
	"os"

	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/berth-ml/berth/internal/version"
)

func main() {
	v := version.Get()
	fmt.Printf("version=%s commit=%s platform=%s\n", v.Version, v.Commit, v.Platform)
	fmt.Printf("uid=%d gid=%d home=%s\n", os.Getuid(), os.Getgid(), os.Getenv("HOME"))
	tmp := "no"
	if f, err := os.CreateTemp("", "standin"); err == nil {
		tmp = "yes"
		f.Close()
		os.Remove(f.Name())
	}
	fmt.Printf("tmp-writable=%s\n", tmp)
	roots := 0
	if pool, err := x509.SystemCertPool(); err == nil && pool != nil {
		// Subjects is deprecated for system pools and may be empty even
		// with roots; Equal to an empty pool says whether any is there.
		if !pool.Equal(x509.NewCertPool()) {
			roots = 1
		}
	}
	fmt.Printf("ca-roots=%d\n", roots)
}
