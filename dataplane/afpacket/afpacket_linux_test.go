package afpacket

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// openInNetns opens uplinks on v0 and v1, a veth pair in a namespace of
// the test's own, from a locked thread moved there and back.
func openInNetns(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	ns := fmt.Sprintf("vxafp%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", ns},
		// No IPv6 on the pair: the kernel's own first frames (MLD reports,
		// router solicitations) would be read before the test's.
		{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"-n", ns, "link", "set", "v0", "up"},
		{"-n", ns, "link", "set", "v1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", ns).Run()
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(self)
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	a, aerr := Open("v0", false)
	b, berr := Open("v1", true)
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		panic(err) // this thread is in the wrong namespace: do not let it run on
	}
	if aerr != nil || berr != nil {
		t.Fatal(errors.Join(aerr, berr))
	}
	return a, b
}

// TestWriter_noAllocations writes frames of the local experimental
// EtherType (0x88b5) on a veth of the test's own namespace, checks that a
// write allocates nothing and that the other end reads them whole; then
// that a read after Close fails with os.ErrClosed.
func TestWriter_noAllocations(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (AF_PACKET)")
	}
	c, peer := openInNetns(t)
	w := c.NewWriter()
	frame := make([]byte, 64)
	frame[12], frame[13] = 0x88, 0xb5
	if err := w.Write(frame); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 2048)}
	sizes := make([]int, 1)
	if n, err := peer.ReadBatch(bufs, sizes, 0); err != nil || n != 1 || sizes[0] != len(frame) {
		t.Fatalf("the peer read %d frames (%v), size %d, want one of %d", n, err, sizes[0], len(frame))
	}
	if a := testing.AllocsPerRun(100, func() { w.Write(frame) }); a != 0 {
		t.Errorf("%v allocations per write, want 0", a)
	}
	peer.Close()
	c.Close()
	if _, err := c.ReadBatch(bufs, make([]int, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v, want os.ErrClosed", err)
	}
}

func TestOpen_missingInterface(t *testing.T) {
	if _, err := Open("vxnet-no-such", false); err == nil {
		t.Error("opened an interface that does not exist")
	}
}
