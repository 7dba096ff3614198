//go:build !windows

package h1

import "syscall"

// errsTooManyFiles are Accept's errors when file descriptors run out.
var errsTooManyFiles = [...]error{syscall.EMFILE, syscall.ENFILE}
