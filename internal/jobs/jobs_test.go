package jobs

import (
	"sync/atomic"
	"testing"
)

// TestGroup: Close waits for the jobs running, and none starts after it.
func TestGroup(t *testing.T) {
	var g Group
	var done atomic.Int32
	release := make(chan struct{})
	for i := 0; i < 3; i++ {
		if !g.Go(func() { <-release; done.Add(1) }) {
			t.Fatal("a job refused before Close")
		}
	}
	close(release)
	g.Close()
	if done.Load() != 3 {
		t.Errorf("Close returned with %d of 3 jobs done", done.Load())
	}
	if g.Go(func() { t.Error("a job ran after Close") }) {
		t.Error("Go accepted a job after Close")
	}
}
