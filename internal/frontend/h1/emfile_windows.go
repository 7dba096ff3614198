package h1

import "syscall"

// errsTooManyFiles are Accept's errors when file descriptors run out.
// Windows sockets report WSAEMFILE (10024); the syscall package's EMFILE
// and ENFILE there are invented values that no system call returns.
var errsTooManyFiles = [...]error{syscall.EMFILE, syscall.ENFILE, syscall.Errno(10024)}
