package rawio

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadWrite goes through a non-blocking pipe: what Write puts in, Read
// takes out; an empty pipe reads as EAGAIN; a closed descriptor as EBADF;
// neither allocates.
func TestReadWrite(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	r, w := uintptr(p[0]), uintptr(p[1])
	if n, e := Write(w, []byte("packet")); n != 6 || e != 0 {
		t.Fatalf("Write: %d %v", n, e)
	}
	buf := make([]byte, 64)
	if n, e := Read(r, buf); n != 6 || e != 0 || string(buf[:n]) != "packet" {
		t.Fatalf("Read: %d %v %q", n, e, buf[:n])
	}
	if n, e := Read(r, buf); n != 0 || e != unix.EAGAIN {
		t.Fatalf("Read of an empty pipe: %d %v, want EAGAIN", n, e)
	}
	if a := testing.AllocsPerRun(100, func() { Read(r, buf) }); a != 0 {
		t.Errorf("%v allocations per Read", a)
	}
	unix.Close(p[1])
	if _, e := Write(w, []byte("x")); e != unix.EBADF {
		t.Errorf("Write to a closed descriptor: %v, want EBADF", e)
	}
}
