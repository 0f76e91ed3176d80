package gossip

import "github.com/hashicorp/memberlist"

// broadcast is one queued message. A newer one with the same key
// invalidates the older still in the queue, so a key that changes fast
// costs one message per gossip round, not one per change.
type broadcast struct {
	key string
	msg []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

// Invalidates implements memberlist.Broadcast.
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && b.key != "" && o.key == b.key
}

// Name implements memberlist.NamedBroadcast (lets the queue find
// invalidated messages by name without a scan).
func (b *broadcast) Name() string { return b.key }

// Message implements memberlist.Broadcast.
func (b *broadcast) Message() []byte { return b.msg }

// Finished implements memberlist.Broadcast.
func (b *broadcast) Finished() {}
