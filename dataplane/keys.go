package dataplane

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vxnet/vxnet/dataplane/seal"
)

// Keys of encrypted networks. The control plane derives the keys this
// host shares with each peer VTEP (seal.Derive) and publishes them, as it
// publishes tables, in an immutable Keyring the packet loops load once
// per batch: the send key a datagram to that VTEP is sealed with, and the
// receive keys a datagram from it may name (the current sessions, and
// those of a rotation still in progress). Keys are shared across
// keyrings, so that a key's counter and replay window carry on when the
// keyring is rebuilt.

// PeerKeys are the keys of one peer VTEP.
type PeerKeys struct {
	// Send seals what goes to the peer; nil while there is none (the
	// peer's keys are not known yet): its datagrams are dropped
	// (seal_no_key).
	Send *seal.SendKey
	// Recv open what the peer sends, by key id: the current keys, and
	// those a rotation keeps for datagrams still on the way.
	Recv []*seal.RecvKey
	// Retired are key ids of keys no longer taken: datagrams naming one
	// count as seal_stale_key rather than seal_unknown_key.
	Retired []uint32
}

// Keyring is an immutable snapshot of the keys of every peer VTEP. Build
// it with NewKeyring and publish it with Switch.SetKeys.
type Keyring struct {
	peers map[netip.Addr]*PeerKeys
}

// NewKeyring builds a keyring from the keys of each peer VTEP. A key id
// two receive keys of one peer share is an error: the peer's datagrams
// would open with either.
func NewKeyring(peers map[netip.Addr]PeerKeys) (*Keyring, error) {
	k := &Keyring{peers: make(map[netip.Addr]*PeerKeys, len(peers))}
	for vtep, p := range peers {
		if !vtep.IsValid() {
			return nil, fmt.Errorf("dataplane: keyring: invalid VTEP address")
		}
		ids := make([]uint32, 0, len(p.Recv))
		for _, r := range p.Recv {
			if r == nil {
				return nil, fmt.Errorf("dataplane: keyring: VTEP %s: nil receive key", vtep)
			}
			if slices.Contains(ids, r.ID()) {
				return nil, fmt.Errorf("dataplane: keyring: VTEP %s: two receive keys with id %08x", vtep, r.ID())
			}
			ids = append(ids, r.ID())
		}
		c := p
		c.Recv = slices.Clone(p.Recv)
		c.Retired = slices.Clone(p.Retired)
		k.peers[vtep.Unmap()] = &c
	}
	return k, nil
}

// Peer returns the keys of one VTEP, or nil.
func (k *Keyring) Peer(vtep netip.Addr) *PeerKeys {
	if k == nil {
		return nil
	}
	return k.peers[vtep.Unmap()]
}

// SetKeys publishes the keys of encrypted networks; the packet loops
// take them from their next batch on. nil: no keys (every sealed
// datagram is dropped).
func (sw *Switch) SetKeys(k *Keyring) { sw.keys.Store(k) }

// RecvKey finds the receive key of vtep named id, or says why there is
// none (DropSealUnknownKey, DropSealStaleKey).
func (k *Keyring) RecvKey(vtep netip.Addr, id uint32) (*seal.RecvKey, DropReason) {
	p := k.Peer(vtep)
	if p == nil {
		return nil, DropSealUnknownKey
	}
	for _, r := range p.Recv {
		if r.ID() == id {
			return r, 0
		}
	}
	if slices.Contains(p.Retired, id) {
		return nil, DropSealStaleKey
	}
	return nil, DropSealUnknownKey
}

// sendKey is the key that seals datagrams to vtep, or nil.
func (k *Keyring) sendKey(vtep netip.Addr) *seal.SendKey {
	if p := k.Peer(vtep); p != nil {
		return p.Send
	}
	return nil
}
