package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate adapts a Node to memberlist.Delegate.
type delegate Node

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.meta.Load()
	if len(meta) > limit {
		return nil
	}
	return meta
}

// NotifyMsg implements memberlist.Delegate.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case kindApp:
		if d.app != nil {
			d.app.NotifyMsg(b[1:])
		}
	case kindLeave:
		(*Node)(d).noteLeaving(string(b[1:]))
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
func (e *events) NotifyJoin(m *memberlist.Node) {
	n := (*Node)(e)
	c := *m
	n.mu.Lock()
	n.members[m.Name] = &c
	delete(n.failed, m.Name)
	delete(n.leaving, m.Name)
	n.mu.Unlock()
	n.emit(EventJoin, &c)
}

// NotifyLeave implements memberlist.EventDelegate: a leave if the node
// announced it (see Node.Leave), a failure otherwise.
func (e *events) NotifyLeave(m *memberlist.Node) {
	n := (*Node)(e)
	c := *m
	m = &c
	n.mu.Lock()
	delete(n.members, m.Name)
	_, announced := n.leaving[m.Name]
	announced = announced || m.State == memberlist.StateLeft // if memberlist ever says so
	announced = announced || m.Name == n.cfg.Name            // this node's own Leave
	delete(n.leaving, m.Name)
	if !announced {
		n.failed[m.Name] = time.Now()
	}
	n.mu.Unlock()
	if announced {
		n.emit(EventLeave, m)
	} else {
		n.emit(EventFail, m)
	}
}

// NotifyUpdate implements memberlist.EventDelegate.
func (e *events) NotifyUpdate(m *memberlist.Node) {
	n := (*Node)(e)
	c := *m
	n.mu.Lock()
	n.members[m.Name] = &c
	n.mu.Unlock()
	n.emit(EventUpdate, &c)
}

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

// Every message a Node sends starts with a kind byte. Append-only.
const (
	kindApp   byte = 0 // the Application's message follows
	kindLeave byte = 1 // the name of a node about to leave follows
)

func frame(kind byte, msg []byte) []byte {
	b := make([]byte, 1+len(msg))
	b[0] = kind
	copy(b[1:], msg)
	return b
}

// leaveNoticeTTL bounds how long a leave notice waits for memberlist to
// report the node gone, and how late a notice may turn a failure into a
// leave.
const leaveNoticeTTL = time.Minute

// noteLeaving records a leave notice. A node already reported failed is
// reported again as left.
func (n *Node) noteLeaving(name string) {
	if name == n.cfg.Name || name == "" {
		return
	}
	now := time.Now()
	n.mu.Lock()
	for _, m := range []map[string]time.Time{n.leaving, n.failed} {
		for k, t := range m {
			if now.Sub(t) > leaveNoticeTTL {
				delete(m, k)
			}
		}
	}
	failedAt, failed := n.failed[name]
	if n.members[name] != nil {
		failed = false // alive again: a late notice must not withdraw it
	}
	if failed {
		delete(n.failed, name)
	} else {
		n.leaving[name] = now
	}
	n.mu.Unlock()
	if failed && now.Sub(failedAt) <= leaveNoticeTTL {
		n.emit(EventLeave, &memberlist.Node{Name: name})
	}
}

// conflicts adapts a Node to memberlist.ConflictDelegate: two live nodes
// announced one name from different addresses. memberlist keeps the one it
// knew and ignores the other; this node notes a conflict on its own name.
type conflicts Node

var _ memberlist.ConflictDelegate = (*conflicts)(nil)

// NotifyConflict implements memberlist.ConflictDelegate.
func (c *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	n := (*Node)(c)
	if existing.Name != n.cfg.Name {
		return // memberlist logs it
	}
	// existing is this node (memberlist's entry for its own name); other
	// is the host that announced the name. (Called under memberlist's
	// lock: nothing here may call back into it.)
	addr := other.Address()
	n.nameTakenBy.Store(&addr)
	now := time.Now().UnixNano()
	if last := n.nameSaidAt.Load(); now-last >= int64(30*time.Second) && n.nameSaidAt.CompareAndSwap(last, now) {
		n.log.Error("another host announces this host's name; the cluster keeps the one it knew", "peerAddr", addr)
	}
}

// NameTakenBy is the gossip address of another live node that announced
// this node's name, or "". A node that finds this right after its first
// join is the newcomer: the others ignore it.
func (n *Node) NameTakenBy() string {
	if p := n.nameTakenBy.Load(); p != nil {
		return *p
	}
	return ""
}
