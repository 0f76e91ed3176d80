// Package jobs runs work in the background that must finish before its
// owner closes, and that must not start once it is closing.
package jobs

import "sync"

// Group is a set of background jobs. The zero value is ready to use.
type Group struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// Go runs f on a goroutine of its own, unless the group is closed; it
// reports whether f runs.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close refuses new jobs and waits for those running.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
