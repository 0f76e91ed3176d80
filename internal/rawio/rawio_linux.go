// Package rawio reads and writes the data plane's non-blocking descriptors
// (TUN devices, AF_PACKET sockets) from inside a syscall.RawConn callback.
// The calls never wait, so they skip the scheduler's system-call
// bookkeeping (RawSyscall): on a busy data plane that bookkeeping keeps the
// runtime's monitor thread waking every few tens of microseconds. Waiting
// for readiness stays with the poller (the callback returns false on
// EAGAIN).
package rawio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on fd into b, retried on EINTR. It returns the bytes
// read and 0, or 0 and the errno (EAGAIN when nothing is queued).
func Read(fd uintptr, b []byte) (int, unix.Errno) {
	return call(unix.SYS_READ, fd, b)
}

// Write is write(2) of b on fd, retried on EINTR, as Read.
func Write(fd uintptr, b []byte) (int, unix.Errno) {
	return call(unix.SYS_WRITE, fd, b)
}

func call(trap, fd uintptr, b []byte) (int, unix.Errno) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, e := unix.RawSyscall(trap, fd, uintptr(p), uintptr(len(b)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}
