package gossip

import "github.com/vxnet/vxnet/internal/queue"

// Subscribe returns a channel of membership events in the order they
// happened. A slow reader never blocks gossip: events queue up for it. The
// channel closes when the node shuts down or cancel is called.
func (n *Node) Subscribe() (events <-chan MemberEvent, cancel func()) {
	q := queue.New[MemberEvent]()
	n.mu.Lock()
	n.subs = append(n.subs, q)
	n.mu.Unlock()
	return q.Out(), func() {
		n.mu.Lock()
		for i, x := range n.subs {
			if x == q {
				n.subs = append(n.subs[:i], n.subs[i+1:]...)
				break
			}
		}
		n.mu.Unlock()
		q.Close()
	}
}
