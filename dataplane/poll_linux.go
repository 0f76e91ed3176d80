package dataplane

import "golang.org/x/sys/unix"

// pollIn reports whether fd is readable now, without waiting.
func pollIn(fd int) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds[:], 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
}
