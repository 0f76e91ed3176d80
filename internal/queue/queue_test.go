package queue

import (
	"testing"
	"time"
)

func TestUnbounded_orderAndNoBlocking(t *testing.T) {
	q := New[int]()
	defer q.Close()
	const n = 100000
	for i := 0; i < n; i++ {
		q.Push(i) // nobody reads yet: must not block
	}
	for i := 0; i < n; i++ {
		select {
		case v := <-q.Out():
			if v != i {
				t.Fatalf("got %d, want %d", v, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("value %d never came out", i)
		}
	}
}

func TestUnbounded_closeClosesOut(t *testing.T) {
	q := New[string]()
	q.Push("a")
	q.Close()
	q.Close()
	q.Push("after close")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-q.Out():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Out not closed after Close")
		}
	}
}
