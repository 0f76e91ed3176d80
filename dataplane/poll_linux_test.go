package dataplane

import (
	"os"
	"testing"
)

// pipeDev is a tun.Device stand-in whose File is the read end of a pipe.
type pipeDev struct {
	tunStub
	r *os.File
}

func (d pipeDev) File() *os.File { return d.r }

// TestPending_seesQueuedDataWithoutAllocating: the inside loop's check for
// more queued packets tells an empty device from one with data, and costs
// no allocation per call.
func TestPending_seesQueuedDataWithoutAllocating(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	pending := pendingFunc(pipeDev{r: r})
	if pending == nil {
		t.Fatal("no check for a device with a file")
	}
	if pending() {
		t.Fatal("an empty device reported pending data")
	}
	w.Write([]byte{1})
	if !pending() {
		t.Fatal("queued data not seen")
	}
	if n := testing.AllocsPerRun(100, func() { pending() }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// tunStub is a tun.Device that does nothing.
type tunStub struct{}

func (tunStub) Read([][]byte, []int, int) (int, error) { return 0, os.ErrClosed }
func (tunStub) Write(b [][]byte, _ int) (int, error)   { return len(b), nil }
func (tunStub) BatchSize() int                         { return 1 }
func (tunStub) Close() error                           { return nil }
