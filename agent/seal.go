package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/gossip"
)

// Keys of encrypted networks (docs/ENCRYPTION.md). Each agent has a
// static key pair in its data directory (hostKeyFile, made on first
// start) and a session key pair made at each start and at each rotation,
// kept in memory only. It announces its public keys in its gossip
// metadata, with whether its CPU has AES instructions. From every live
// member's announcement it derives the keys of the pair and publishes them
// to the switch as one keyring. A member that is gone (left, failed,
// removed) has no announcement, so its keys leave the keyring and what it
// sends is dropped.
//
// A rotation loses no packet. The new session key is announced as "next"
// first and used only rotateAnnounce later, when every member has derived
// the keys to open what it seals; the replaced one stays, announced as
// "previous", for rotateGrace, for datagrams sealed by members that have
// not heard of the change yet. A host holds at most three sessions, and
// takes datagrams sealed for any pair of its own and the peer's.

// hostKeyFile is the static key's file in the data directory.
const hostKeyFile = "host.key"

// Rotation timings: long enough for an announcement to reach every
// member (gossip spreads it in well under a second in a LAN cluster).
const (
	rotateAnnounce = 5 * time.Second
	rotateGrace    = time.Minute
)

// sealing is this host's keys and those it shares with each peer.
type sealing struct {
	static   *seal.KeyPair
	aes      bool
	announce time.Duration // rotateAnnounce; shorter in tests
	grace    time.Duration // rotateGrace

	mu        sync.Mutex
	current   *seal.KeyPair // seals what this host sends
	next      *seal.KeyPair // announced, in use from nextAt; nil when no rotation runs
	previous  *seal.KeyPair // replaced, still opening until prevUntil; nil when none
	since     time.Time     // when current came into use
	nextAt    time.Time
	prevUntil time.Time
	rotations uint64

	derived map[pairID]seal.Keys // the keys of each pair of sessions in use
	retired map[string][]uint32  // per member, key ids of receive keys no longer taken
	taken   map[string][]uint32  // per member, the receive keys' ids of the last keyring
	last    string               // the announcements and sessions the keyring was built from
}

// pairID names the keys of one pair of sessions.
type pairID struct {
	ours, theirStatic, theirs seal.PublicKey
	suite                     seal.Suite
}

func openSealing(dataDir string) (*sealing, error) {
	static, err := seal.LoadOrCreateStatic(filepath.Join(dataDir, hostKeyFile))
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	return newSealing(static, seal.HasAES(), time.Now())
}

func newSealing(static *seal.KeyPair, aes bool, now time.Time) (*sealing, error) {
	session, err := seal.NewKeyPair()
	if err != nil {
		return nil, err
	}
	return &sealing{static: static, aes: aes, announce: rotateAnnounce, grace: rotateGrace, current: session, since: now,
		derived: map[pairID]seal.Keys{}, retired: map[string][]uint32{}, taken: map[string][]uint32{}}, nil
}

func pub(k *seal.KeyPair) string {
	if k == nil {
		return ""
	}
	return k.Public().String()
}

// meta adds this host's public keys to its gossip metadata.
func (s *sealing) meta(m gossip.Meta) gossip.Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.HostKey, m.SessionKey, m.NextKey, m.PreviousKey, m.AES = pub(s.static), pub(s.current), pub(s.next), pub(s.previous), s.aes
	return m
}

// errRotating: a rotation is under way.
var errRotating = errors.New("a key rotation is under way")

// rotate starts a rotation: a new session key, announced now, in use
// from the returned time.
func (s *sealing) rotate(now time.Time) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil {
		return s.nextAt, fmt.Errorf("%w: its key is in use from %s", errRotating, s.nextAt.Format(time.RFC3339))
	}
	if s.previous != nil {
		// A second rotation now would drop the key before last while
		// datagrams sealed with it may still be on the way.
		return s.prevUntil, fmt.Errorf("%w: the last one keeps its old key until %s; rotate again after that", errRotating, s.prevUntil.Format(time.RFC3339))
	}
	k, err := seal.NewKeyPair()
	if err != nil {
		return time.Time{}, err
	}
	s.next, s.nextAt = k, now.Add(s.announce)
	return s.nextAt, nil
}

// advance moves a rotation on: the announced key into use, the replaced
// one out once its grace is over; every interval (0: never) a rotation
// starts by itself. It reports whether the announcement changed.
func (s *sealing) advance(now time.Time, interval time.Duration) bool {
	s.mu.Lock()
	changed := false
	if s.next != nil && !now.Before(s.nextAt) {
		s.previous, s.current, s.next = s.current, s.next, nil
		s.since, s.prevUntil = now, now.Add(s.grace)
		s.rotations++
		changed = true
	}
	if s.previous != nil && !now.Before(s.prevUntil) {
		s.previous = nil
		changed = true
	}
	due := interval > 0 && s.next == nil && now.Sub(s.since) >= interval
	s.mu.Unlock()
	if due {
		if _, err := s.rotate(now); err == nil {
			changed = true
		}
	}
	return changed
}

// theirSessions are a member's announced session keys: current, next,
// previous (the last two may be absent).
func theirSessions(m gossip.Member) (static seal.PublicKey, sessions []seal.PublicKey, err error) {
	if static, err = seal.ParsePublicKey(m.Meta.HostKey); err != nil {
		return static, nil, fmt.Errorf("host key: %w", err)
	}
	for i, k := range []string{m.Meta.SessionKey, m.Meta.NextKey, m.Meta.PreviousKey} {
		if k == "" && i > 0 {
			continue
		}
		p, err := seal.ParsePublicKey(k)
		if err != nil {
			return static, nil, fmt.Errorf("session key: %w", err)
		}
		sessions = append(sessions, p)
	}
	return static, sessions, nil
}

// keyring derives the keys of every member that announced keys (self
// excluded) and returns the keyring; changed is false, and nothing else
// returned, when neither the members' announcements nor this host's
// sessions changed since last time. Members whose announcement is unusable
// are reported in errs and left out.
func (s *sealing) keyring(self string, members []gossip.Member) (ring *dataplane.Keyring, errs []error, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fingerprint := pub(s.current) + pub(s.next) + pub(s.previous) + "\n"
	for _, m := range members {
		if m.Name != self {
			fingerprint += fmt.Sprintf("%s|%s|%s|%s|%s|%s|%v\n", m.Name, m.Meta.VTEP, m.Meta.HostKey, m.Meta.SessionKey, m.Meta.NextKey, m.Meta.PreviousKey, m.Meta.AES)
		}
	}
	if fingerprint == s.last {
		return nil, nil, false
	}
	ours := []*seal.KeyPair{s.current}
	for _, k := range []*seal.KeyPair{s.next, s.previous} {
		if k != nil {
			ours = append(ours, k)
		}
	}
	used := map[pairID]seal.Keys{}
	byVTEP := map[netip.Addr]dataplane.PeerKeys{}
	owner := map[netip.Addr]string{}
	for _, m := range members {
		if m.Name == self || m.Meta.HostKey == "" {
			continue // an agent that announces no keys takes part in no encrypted network
		}
		p, err := s.peerKeys(m, ours, used)
		if err != nil {
			errs = append(errs, fmt.Errorf("member %s: %w", m.Name, err))
			continue
		}
		vtep, _ := netip.ParseAddr(m.Meta.VTEP)
		vtep = vtep.Unmap()
		if other, dup := owner[vtep]; dup {
			errs = append(errs, fmt.Errorf("member %s: VTEP %s is member %s's too; the keys of both are left out", m.Name, vtep, other))
			delete(byVTEP, vtep)
			continue
		}
		owner[vtep] = m.Name
		byVTEP[vtep] = p
	}
	// Keys of sessions no longer in use are forgotten (forward secrecy).
	s.derived = used
	for name := range s.taken {
		if !containsName(members, name) {
			delete(s.taken, name)
			delete(s.retired, name)
		}
	}
	ring, err := dataplane.NewKeyring(byVTEP)
	if err != nil {
		return nil, append(errs, err), true
	}
	s.last = fingerprint
	return ring, errs, true
}

func containsName(members []gossip.Member, name string) bool {
	for _, m := range members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// maxRetired bounds the retired key ids remembered per member.
const maxRetired = 16

// peerKeys derives (or takes from the cache) the keys shared with m: it
// seals with this host's current session and m's current one, and opens
// what any pair of this host's and m's announced sessions sealed.
func (s *sealing) peerKeys(m gossip.Member, ours []*seal.KeyPair, used map[pairID]seal.Keys) (dataplane.PeerKeys, error) {
	if _, err := netip.ParseAddr(m.Meta.VTEP); err != nil {
		return dataplane.PeerKeys{}, fmt.Errorf("VTEP %q: not an address", m.Meta.VTEP)
	}
	static, theirs, err := theirSessions(m)
	if err != nil {
		return dataplane.PeerKeys{}, err
	}
	suite := seal.Pick(s.aes, m.Meta.AES)
	var pk dataplane.PeerKeys
	var ids []uint32
	for i, o := range ours {
		for j, t := range theirs {
			id := pairID{ours: o.Public(), theirStatic: static, theirs: t, suite: suite}
			k, ok := used[id]
			if !ok {
				if k, ok = s.derived[id]; !ok {
					if k, err = seal.Derive(suite, seal.Local{Static: s.static, Session: o}, seal.Remote{Static: static, Session: t}); err != nil {
						return dataplane.PeerKeys{}, err
					}
				}
				used[id] = k
			}
			if i == 0 && j == 0 {
				pk.Send = k.Send
			}
			if !containsID(ids, k.Recv.ID()) {
				pk.Recv = append(pk.Recv, k.Recv)
				ids = append(ids, k.Recv.ID())
			}
		}
	}
	retired := s.retired[m.Name]
	for _, id := range s.taken[m.Name] {
		if !containsID(ids, id) && !containsID(retired, id) {
			retired = append(retired, id)
		}
	}
	if len(retired) > maxRetired {
		retired = retired[len(retired)-maxRetired:]
	}
	s.retired[m.Name], s.taken[m.Name] = retired, ids
	pk.Retired = retired
	return pk, nil
}

func containsID(ids []uint32, id uint32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// refreshKeys publishes the keys of the members alive now, when they
// changed.
func (a *Agent) refreshKeys() {
	ring, errs, changed := a.seal.keyring(a.cfg.Name, a.kv.Node().Members())
	if !changed {
		return
	}
	if ring != nil {
		a.sw.SetKeys(ring)
	}
	a.skipped.Report(tableKeys, errors.Join(errs...))
}

// announceKeys puts this host's current public keys in its gossip
// metadata.
func (a *Agent) announceKeys() {
	if err := a.kv.Node().SetMeta(a.seal.meta(a.baseMeta())); err != nil {
		a.log.Warn("announcing this host's keys", "error", err)
	}
}

// baseMeta is this host's gossip metadata without its keys.
func (a *Agent) baseMeta() gossip.Meta {
	return gossip.Meta{VTEP: a.vtep.String(), Version: a.cfg.Version}
}

// RotateKeys starts a rotation of this host's session key: every key it
// shares with another host is replaced, without a packet lost, from the
// time it returns on.
func (a *Agent) RotateKeys(ctx context.Context) (api.KeyRotation, error) {
	at, err := a.seal.rotate(time.Now())
	if err != nil {
		return api.KeyRotation{}, apiError(api.CodeConflict, "", "%v", err)
	}
	a.announceKeys()
	a.refreshKeys()
	a.log.Info("key rotation started", "inUseAt", at.Format(time.RFC3339))
	return api.KeyRotation{InUseAt: at}, nil
}

// routineKeys moves rotations on, starts the scheduled ones, and
// refreshes the keys every second: a member that joins, leaves, fails or
// rotates changes them, whether or not a table row changes with it.
func (a *Agent) routineKeys(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if a.seal.advance(now, a.cfg.KeyRotation) {
				a.announceKeys()
				a.log.Info("session keys changed", "rotations", a.seal.rotationsDone())
			}
			a.refreshKeys()
		}
	}
}

// rotationsDone is how many rotations completed.
func (s *sealing) rotationsDone() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotations
}
