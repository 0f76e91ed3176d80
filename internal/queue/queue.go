// Package queue has an unbounded, ordered hand-off from producers that must
// never block (gossip callbacks, table writes) to one slow consumer.
package queue

import "sync"

// Unbounded delivers pushed values on Out in push order. Push never
// blocks; values wait in memory until the reader takes them. Close stops
// delivery (values not yet taken are dropped) and closes Out.
type Unbounded[T any] struct {
	mu      sync.Mutex
	pending []T
	out     chan T
	wake    chan struct{}
	quit    chan struct{}
	once    sync.Once
}

// New starts a queue.
func New[T any]() *Unbounded[T] {
	q := &Unbounded[T]{out: make(chan T), wake: make(chan struct{}, 1), quit: make(chan struct{})}
	go q.routineDeliver()
	return q
}

// Out is the channel values come out of.
func (q *Unbounded[T]) Out() <-chan T { return q.out }

// Push queues v. It is safe to call after Close (v is dropped).
func (q *Unbounded[T]) Push(v T) {
	select {
	case <-q.quit:
		return
	default:
	}
	q.mu.Lock()
	q.pending = append(q.pending, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len is the number of values waiting.
func (q *Unbounded[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Close stops the queue; idempotent.
func (q *Unbounded[T]) Close() { q.once.Do(func() { close(q.quit) }) }

func (q *Unbounded[T]) routineDeliver() {
	defer close(q.out)
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		for i, v := range batch {
			select {
			case q.out <- v:
				var zero T
				batch[i] = zero
			case <-q.quit:
				return
			}
		}
		select {
		case <-q.wake:
		case <-q.quit:
			return
		}
	}
}
