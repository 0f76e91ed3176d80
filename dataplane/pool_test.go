package dataplane

import (
	"testing"

	"github.com/vxnet/vxnet/dataplane/tun/tuntest"
)

// nopSuper takes super-packets and drops them.
type nopSuper struct{}

func (nopSuper) Write(b []byte) (int, error) { return len(b), nil }

// TestBatchPool_forgetsRemovedPorts: a batch keeps its writers to ports
// from one loan to the next, but once a port is removed the next loan of
// the batch no longer holds that port's writer (nor so the port).
func TestBatchPool_forgetsRemovedPorts(t *testing.T) {
	sw, err := New(DefaultConfig(), &nopUnderlay{})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	var ports []*Port
	for _, name := range []string{"a", "c"} {
		p, err := sw.AddPort(name, tuntest.New(8, 4))
		if err != nil {
			t.Fatal(err)
		}
		p.newSuperOut = func() superWriter { return nopSuper{} }
		ports = append(ports, p)
	}
	a, c := ports[0], ports[1]
	b := sw.batches.get()
	b.local.writer(a)
	b.local.writer(c)
	sw.batches.put(b)

	b = sw.batches.get()
	if len(b.local.writers) != 2 {
		t.Fatalf("%d writers kept across loans, want 2", len(b.local.writers))
	}
	sw.batches.put(b)

	sw.RemovePort(a)
	b = sw.batches.get()
	defer sw.batches.put(b)
	if len(b.local.writers) != 1 || b.local.writers[0].port != c {
		t.Errorf("after removing a, the batch writes to %d ports, want c's writer only", len(b.local.writers))
	}
	if made := sw.batches.made.Load(); made != 1 {
		t.Errorf("%d batches made for loans one at a time, want 1", made)
	}
}
