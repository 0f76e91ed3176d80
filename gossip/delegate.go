package gossip

import (
	"github.com/hashicorp/memberlist"
)

// delegate adapts a Node to memberlist.Delegate.
type delegate Node

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}

// NotifyMsg implements memberlist.Delegate.
func (d *delegate) NotifyMsg(b []byte) {
	if d.app != nil && len(b) > 0 {
		d.app.NotifyMsg(b)
	}
}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate.
func (d *delegate) LocalState(join bool) []byte {
	if d.app == nil {
		return nil
	}
	return d.app.LocalState(join)
}

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if d.app != nil && len(buf) > 0 {
		d.app.MergeRemoteState(buf, join)
	}
}

// events adapts a Node to memberlist.EventDelegate.
type events Node

var _ memberlist.EventDelegate = (*events)(nil)

// NotifyJoin implements memberlist.EventDelegate.
func (e *events) NotifyJoin(m *memberlist.Node) { (*Node)(e).emit(EventJoin, m) }

// NotifyLeave implements memberlist.EventDelegate. memberlist marks a node
// that announced its own departure as left, one that others found dead as
// dead.
func (e *events) NotifyLeave(m *memberlist.Node) {
	if m.State == memberlist.StateLeft {
		(*Node)(e).emit(EventLeave, m)
	} else {
		(*Node)(e).emit(EventFail, m)
	}
}

// NotifyUpdate implements memberlist.EventDelegate.
func (e *events) NotifyUpdate(m *memberlist.Node) { (*Node)(e).emit(EventUpdate, m) }

func (n *Node) emit(t EventType, m *memberlist.Node) {
	ev := MemberEvent{Type: t, Member: toMember(m)}
	if t != EventUpdate {
		n.log.Info("member "+t.String(), "peer", m.Name, "peerAddr", m.Address())
	}
	if n.app != nil {
		n.app.MemberEvent(ev)
	}
	n.mu.Lock()
	for _, q := range n.subs {
		q.Push(ev)
	}
	n.mu.Unlock()
}
