package kvs

import "github.com/vxnet/vxnet/internal/queue"

// watcher is one Watch call: the store pushes under its own lock (never
// blocking), the queue hands events to the reader in order.
type watcher struct {
	table string
	q     *queue.Unbounded[Event]
}

// notifyLocked pushes ev to the watchers of its table. Under the store's
// lock, every watcher sees the events in the order of the changes.
func (s *store) notifyLocked(ev Event) {
	for _, w := range s.watchers {
		if w.table == "" || w.table == ev.Entry.Table {
			w.q.Push(ev)
		}
	}
}

// watch registers a watcher and returns the snapshot it starts from.
func (s *store) watch(table string) ([]Entry, *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &watcher{table: table, q: queue.New[Event]()}
	s.watchers = append(s.watchers, w)
	return s.listLocked(table), w
}

func (s *store) unwatch(w *watcher) {
	s.mu.Lock()
	for i, x := range s.watchers {
		if x == w {
			s.watchers = append(s.watchers[:i], s.watchers[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	w.q.Close()
}

func (s *store) closeWatchers() {
	s.mu.Lock()
	ws := s.watchers
	s.watchers = nil
	s.mu.Unlock()
	for _, w := range ws {
		w.q.Close()
	}
}
