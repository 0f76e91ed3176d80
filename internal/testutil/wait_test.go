package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitFor_returnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, "three polls", 5*time.Second, func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("condition checked %d times after it held", n.Load())
	}
}
