package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/vxnet/vxnet/agent/config"
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

	publishMu sync.Mutex // held by refreshKeys while it builds and publishes a keyring

	mu        sync.Mutex
	current   *seal.KeyPair // seals what this host sends
	next      *seal.KeyPair // to be announced, then in use from nextAt; nil when no rotation runs
	previous  *seal.KeyPair // replaced, still opening until prevUntil; nil when none
	since     time.Time     // when current came into use
	nextAt    time.Time     // zero until next's announcement went out (announced)
	prevUntil time.Time
	rotations uint64

	// derived holds the keys of every pair of sessions derived while this
	// host's session of the pair lives, whether or not the member is in
	// the membership now: deriving a pair again would start its counter
	// at 0 again (a nonce used twice) and its replay window empty. They go
	// when this host's session is dropped (forward secrecy); at most
	// maxDerived, past which a rotation starts.
	derived map[pairID]seal.Keys
	retired map[string][]uint32 // per member, key ids of receive keys no longer taken
	taken   map[string][]uint32 // per member, the receive keys' ids of the last keyring
	last    string              // the announcements and sessions the keyring was built from
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

// hostKey is this host's static key pair (it never changes).
func (s *sealing) hostKey() *seal.KeyPair { return s.static }

// meta adds this host's public keys to its gossip metadata.
func (s *sealing) meta(m gossip.Meta) gossip.Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.HostKey, m.SessionKey, m.NextKey, m.PreviousKey, m.AES = pub(s.static), pub(s.current), pub(s.next), pub(s.previous), s.aes
	return m
}

// errRotating: a rotation is under way.
var errRotating = errors.New("a key rotation is under way")

// rotate starts a rotation: a new session key, to be announced now
// (meta, then announced), in use rotateAnnounce after the announcement went
// out; the time returned is when that will be if it goes out now.
func (s *sealing) rotate(now time.Time) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil {
		if s.nextAt.IsZero() {
			return now, fmt.Errorf("%w: its key is being announced", errRotating)
		}
		return s.nextAt, fmt.Errorf("%w: its key is in use from %s and keeps the old one until %s; rotate again after that", errRotating,
			s.nextAt.UTC().Format(time.RFC3339), s.nextAt.Add(s.grace).UTC().Format(time.RFC3339))
	}
	if s.previous != nil {
		// A second rotation now would drop the key before last while
		// datagrams sealed with it may still be on the way.
		return s.prevUntil, fmt.Errorf("%w: the last one keeps its old key until %s; rotate again after that", errRotating, s.prevUntil.UTC().Format(time.RFC3339))
	}
	k, err := seal.NewKeyPair()
	if err != nil {
		return time.Time{}, err
	}
	s.next, s.nextAt = k, time.Time{}
	return now.Add(s.announce), nil
}

// announced records that the announcement made from meta went out at now:
// a next key in it comes into use rotateAnnounce later. A key whose
// announcement failed is never used: the members could not open what it
// sealed.
func (s *sealing) announced(now time.Time, m gossip.Meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil && s.nextAt.IsZero() && m.NextKey == pub(s.next) {
		s.nextAt = now.Add(s.announce)
	}
}

// advance moves a rotation on: the announced key into use, the replaced
// one out once its grace is over; every interval (0: never) a rotation
// starts by itself. It reports whether the announcement changed.
func (s *sealing) advance(now time.Time, interval time.Duration) bool {
	s.mu.Lock()
	changed := false
	if s.next != nil && !s.nextAt.IsZero() && !now.Before(s.nextAt) {
		s.previous, s.current, s.next = s.current, s.next, nil
		s.since, s.prevUntil = now, now.Add(s.grace)
		s.rotations++
		changed = true
	}
	if s.previous != nil && !now.Before(s.prevUntil) {
		s.previous = nil
		changed = true
	}
	due := s.next == nil && (interval > 0 && now.Sub(s.since) >= interval || len(s.derived) > maxDerived)
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
	byVTEP := map[netip.Addr]dataplane.PeerKeys{}
	// A host key two members announce is nobody's: one of them is lying.
	statics := map[string][]string{}
	for _, m := range members {
		if m.Name != self && m.Meta.HostKey != "" {
			statics[m.Meta.HostKey] = append(statics[m.Meta.HostKey], m.Name)
		}
	}
	owner := map[netip.Addr]string{}
	for _, m := range members {
		if m.Name == self || m.Meta.HostKey == "" {
			continue // an agent that announces no keys takes part in no encrypted network
		}
		if names := statics[m.Meta.HostKey]; len(names) > 1 {
			errs = append(errs, fmt.Errorf("member %s: members %v announce one host key; the keys of all of them are left out", m.Name, names))
			continue
		}
		p, err := s.peerKeys(m, ours)
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
	for id := range s.derived {
		if !ownsSession(ours, id.ours) {
			delete(s.derived, id) // this host's session of the pair is gone: never used again
		}
	}
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

func ownsSession(ours []*seal.KeyPair, p seal.PublicKey) bool {
	for _, o := range ours {
		if o.Public() == p {
			return true
		}
	}
	return false
}

// maxDerived bounds the pairs of sessions kept (see sealing.derived);
// past it, advance starts a rotation, which lets them go.
const maxDerived = 4096

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
func (s *sealing) peerKeys(m gossip.Member, ours []*seal.KeyPair) (dataplane.PeerKeys, error) {
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
			k, ok := s.derived[id]
			if !ok {
				if k, err = seal.Derive(suite, seal.Local{Static: s.static, Session: o}, seal.Remote{Static: static, Session: t}); err != nil {
					return dataplane.PeerKeys{}, err
				}
				s.derived[id] = k
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
	// One at a time, built and published together: an older keyring must
	// never be published after a newer one.
	a.seal.publishMu.Lock()
	defer a.seal.publishMu.Unlock()
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
	// One announcement at a time: one built before a keyring change must
	// not land after one built since.
	a.announceMu.Lock()
	defer a.announceMu.Unlock()
	m := a.seal.meta(a.baseMeta())
	if err := a.kv.Node().SetMeta(m); err != nil {
		// A next key is not used until an announcement of it went out:
		// the next tick announces again.
		a.log.Warn("announcing this host's keys", "error", err)
		return
	}
	a.seal.announced(time.Now(), m)
}

// baseMeta is this host's gossip metadata without its keys.
func (a *Agent) baseMeta() gossip.Meta {
	keys := a.startKeys // until gossip runs
	if a.kv != nil {
		keys = a.kv.Node().Keys()
	}
	m := gossip.Meta{VTEP: a.vtep.String(), Version: a.cfg.Version, GossipKeys: keyFingerprints(keys)}
	if a.cfg.Store == config.StoreEtcd {
		m.Store, m.StorePrefix = config.StoreEtcd, a.etcdPrefix()
	}
	return m
}

// RotateKeys starts a rotation of this host's session key: every key it
// shares with another host is replaced, without a packet lost, from the
// time it returns on.
func (a *Agent) RotateKeys(ctx context.Context) (api.KeyRotation, error) {
	if !a.gossipEncrypted {
		return api.KeyRotation{}, apiError(api.CodeConflict, "", "this cluster's gossip is not encrypted, so it has no encrypted network and no keys to rotate: encrypted networks need every agent started with --gossip-key-file FILE")
	}
	at, err := a.seal.rotate(time.Now())
	if err != nil {
		return api.KeyRotation{}, apiError(api.CodeConflict, "", "%v", err)
	}
	a.announceKeys()
	a.refreshKeys()
	if t := a.seal.inUseAt(); !t.IsZero() {
		at = t
	}
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
			done := a.seal.rotationsDone()
			if a.seal.advance(now, a.cfg.KeyRotation) || a.seal.unannounced() {
				a.announceKeys()
			}
			if n := a.seal.rotationsDone(); n != done {
				a.log.Info("session keys changed", "rotations", n)
			}
			a.refreshKeys()
		}
	}
}

// inUseAt is when the next key comes into use; zero when there is none
// or its announcement has not gone out.
func (s *sealing) inUseAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextAt
}

// unannounced reports whether a next key still waits for its
// announcement to go out.
func (s *sealing) unannounced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next != nil && s.nextAt.IsZero()
}

// rotationsDone is how many rotations completed.
func (s *sealing) rotationsDone() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotations
}
