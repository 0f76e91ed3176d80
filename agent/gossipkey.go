package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// Gossip key rotation, across a live cluster, losing no host (memberlist
// tries every key it holds on what it receives, and encrypts with the
// first):
//
//  1. install: the host asked to rotate writes the GossipKeys row with a
//     new key, sealed with the key in use; every host adds it to its
//     keyring (and key file) and lists it in its gossip metadata.
//  2. use: once every member lists it, the row says so; every host
//     encrypts with the new key, and lists it first.
//  3. done: once every member lists it first, every host drops the
//     other keys.
//
// A step some member does not show within rotatePhaseTimeout stops the
// rotation there, naming the member: every host still accepts every key
// it held, so nothing is lost, and a new rotation starts over. A host
// down all through a rotation comes back with the old key only: it needs
// the new one (a copy of another host's key file, or a join token). One
// that slept through the last steps holds the new key second: alone, it
// encrypts with its next key (huntKey), is heard, and follows the row.

// rotatePhaseTimeout bounds the wait for every member to show a step.
const rotatePhaseTimeout = time.Minute

// keyFingerprint names a gossip key without giving it away: the first
// 8 bytes of its SHA-256, in hex.
func keyFingerprint(k []byte) string {
	h := sha256.Sum256(append([]byte("vxnet gossip key "), k...))
	return hex.EncodeToString(h[:8])
}

// keyFingerprints is the metadata's list, the key in use first.
func keyFingerprints(keys [][]byte) string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = keyFingerprint(k)
	}
	return strings.Join(fps, ",")
}

// rotationContext binds a sealed key to its rotation, its step, its
// initiator and its member: a row whose step or initiator was changed does
// not open.
func rotationContext(r tables.GossipKeyRotation, member string) []byte {
	return []byte("vxnet gossip key rotation " + strconv.Itoa(r.Generation) + " " + r.Phase + " " + r.Key + " by " + r.Initiator + " for " + member)
}

// rotationState is where this host is in the rotations it followed:
// kept in the data directory, so a row read again after a restart (a
// store restored from a backup) is not followed twice.
type rotationState struct {
	Generation int    `json:"generation"`
	Phase      int    `json:"phase"` // phaseOrder
	Key        string `json:"key"`
}

const rotationFile = "gossip-rotation.json"

func loadRotationState(dataDir string) rotationState {
	var st rotationState
	if b, err := os.ReadFile(filepath.Join(dataDir, rotationFile)); err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// newer tells whether r is a step after st: a later generation, or a
// later step of the same rotation, or another rotation of the same
// generation (two started at once: the row's last writer wins).
func (st rotationState) newer(r tables.GossipKeyRotation) bool {
	switch {
	case r.Generation != st.Generation:
		return r.Generation > st.Generation
	case r.Key != st.Key:
		return true
	}
	return phaseOrder[r.Phase] > st.Phase
}

// routineGossipKeys follows the GossipKeys row.
func (a *Agent) routineGossipKeys(ctx context.Context) {
	if !a.gossipEncrypted {
		return
	}
	rows, events, cancel := a.kv.Watch(tables.GossipKeys)
	defer cancel()
	for _, e := range rows {
		a.followRotation(e)
	}
	hunt := time.NewTicker(keyHuntEvery)
	defer hunt.Stop()
	alone := 0
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !ev.Entry.Deleted {
				a.followRotation(ev.Entry)
			}
		case <-hunt.C:
			alone = a.huntKey(alone)
			// A row read before its initiator was in sight (at a
			// restart, before the join) is tried again.
			if a.rotationAwaits.Load() {
				for _, e := range a.kv.List(tables.GossipKeys) {
					a.followRotation(e)
				}
			}
		}
	}
}

// keyHuntEvery is how often a host with members to join, alone in the
// cluster, looks at which key it encrypts with.
var keyHuntEvery = 5 * time.Second

// huntKey: a host alone (no other live member) for two looks in a row,
// with members to join and more than one gossip key, encrypts with its
// next key: it may have slept through a rotation (SIGSTOP, a VM paused),
// taken its first step, and then lost the others, who already dropped
// the key it still encrypts with (memberlist tries every key on what it
// receives, so the others' messages would have reached it, but its own
// are refused). Once they hear it, the rejoin brings the rotation's last
// row, and it drops the old key. It returns the looks alone so far.
func (a *Agent) huntKey(alone int) int {
	node := a.kv.Node()
	if node.NumMembers() > 1 || len(a.cfg.Join) == 0 {
		return 0
	}
	if alone++; alone < 2 {
		return alone
	}
	a.gossipKeyMu.Lock()
	defer a.gossipKeyMu.Unlock()
	keys := node.Keys()
	if len(keys) < 2 {
		return alone
	}
	if err := node.UseKey(keys[1]); err != nil {
		a.log.Warn("gossip: encrypting with another key", "error", err)
		return alone
	}
	a.announceKeys()
	a.log.Warn("gossip: no member answers; encrypting with the next key this host holds (a key rotation may have gone on while it was away)",
		"peerAddr", strings.Join(a.cfg.Join, ","), "count", len(keys))
	return 0
}

// phaseOrder places a phase within its rotation.
var phaseOrder = map[string]int{tables.PhaseInstall: 1, tables.PhaseUse: 2, tables.PhaseDone: 3}

// followRotation takes this host's keyring to the row's step, keeps the
// keys in the key file first, and then shows them in the gossip metadata.
// A row is followed only if the key sealed to this host in it opens as
// sealed by its initiator, a live member, for this very step (so neither
// a store nor a former member can make or change one), and only if it is
// a step after the last one followed (a replay, or a row read late, is
// ignored).
func (a *Agent) followRotation(e kvs.Entry) {
	r, err := tables.DecodeGossipKeyRotation(e.Key, e.Value)
	if err != nil {
		a.skipped.Report(tables.GossipKeys, err)
		return
	}
	a.gossipKeyMu.Lock()
	defer a.gossipKeyMu.Unlock()
	if !a.rotation.newer(r) {
		return
	}
	node := a.kv.Node()
	if have := node.Keys(); len(have) == 1 && keyFingerprint(have[0]) == r.Key {
		// This host holds the rotation's key alone already: it joined or
		// was set up after the rotation. Nothing to follow, or to warn of.
		a.rotation = rotationState{Generation: r.Generation, Phase: phaseOrder[tables.PhaseDone], Key: r.Key}
		a.rotationAwaits.Store(false)
		return
	}
	var initiator seal.PublicKey
	primaries := map[string]bool{}
	found := false
	for _, m := range node.Members() {
		if m.Name == r.Initiator {
			initiator, err = seal.ParsePublicKey(m.Meta.HostKey)
			found = err == nil
		}
		if fps := strings.Split(m.Meta.GossipKeys, ","); fps[0] != "" {
			primaries[fps[0]] = true
		}
	}
	if !found {
		if !a.rotationAwaits.Swap(true) { // said once, tried again
			a.log.Warn("gossip key rotation: its initiator is not a live member with a host key (yet); not followed until it is", "count", r.Generation, "node", r.Initiator)
		}
		return
	}
	a.rotationAwaits.Store(false)
	sealed, ok := r.Sealed[a.cfg.Name]
	if !ok {
		a.log.Warn("gossip key rotation: the new key was not sealed to this host (it was not a member when the rotation began); it gets the key by joining again with a join token",
			"count", r.Generation)
		return
	}
	newKey, err := a.seal.hostKey().OpenSealed(initiator, rotationContext(r, a.cfg.Name), sealed)
	if err != nil || keyFingerprint(newKey) != r.Key {
		a.log.Warn("gossip key rotation: the key sealed to this host does not open as its initiator's for this step; not followed", "count", r.Generation, "error", err)
		return
	}
	have := node.Keys()
	// The keyring this step wants, the key to encrypt with first.
	var want [][]byte
	switch r.Phase {
	case tables.PhaseInstall:
		// Keep what any live member encrypts with (a rotation that
		// stopped halfway may have left some on another key); drop the
		// other keys of such rotations.
		want = append(want, have[0])
		for _, k := range have[1:] {
			if primaries[keyFingerprint(k)] {
				want = append(want, k)
			}
		}
		want = append(want, newKey)
	case tables.PhaseUse:
		want = append(want, newKey)
		for _, k := range have {
			if keyFingerprint(k) != r.Key {
				want = append(want, k)
			}
		}
	case tables.PhaseDone:
		want = [][]byte{newKey}
	}
	// Kept first: a host that could not keep the keys neither uses them
	// nor shows the step done (the rotation stops, naming it).
	if err := a.keepGossipKeys(want); err != nil {
		a.log.Error("gossip key rotation: the new keys are not kept, so this host does not take this step", "path", a.cfg.GossipKeyFile, "error", err)
		return
	}
	for _, k := range want {
		if !slices.ContainsFunc(have, func(h []byte) bool { return string(h) == string(k) }) {
			if err := node.InstallKey(k); err != nil {
				a.log.Warn("gossip key rotation: installing a key", "error", err)
				return
			}
		}
	}
	if err := node.UseKey(want[0]); err != nil {
		a.log.Warn("gossip key rotation: using the key", "error", err)
		return
	}
	for _, k := range have {
		if !slices.ContainsFunc(want, func(w []byte) bool { return string(w) == string(k) }) {
			node.RemoveKey(k)
		}
	}
	a.rotation = rotationState{Generation: r.Generation, Phase: phaseOrder[r.Phase], Key: r.Key}
	if b, err := json.Marshal(a.rotation); err == nil {
		if err := config.WriteSecretFile(filepath.Join(a.cfg.DataDir, rotationFile), b); err != nil {
			a.log.Warn("gossip key rotation: keeping where this host is", "path", filepath.Join(a.cfg.DataDir, rotationFile), "error", err)
		}
	}
	a.announceKeys()
	a.log.Info("gossip key rotation: step done", "count", r.Generation, "mode", r.Phase)
}

// keepGossipKeys writes the keyring to the key file.
func (a *Agent) keepGossipKeys(keys [][]byte) error {
	if a.cfg.GossipKeyFile == "" {
		return errors.New("the key came from --gossip-key, not a file")
	}
	texts := make([]string, len(keys))
	for i, k := range keys {
		texts[i] = base64.StdEncoding.EncodeToString(k)
	}
	return config.WriteGossipKeys(a.cfg.GossipKeyFile, texts)
}

// RotateGossipKey implements api.Backend: a new gossip key, taken into
// use by every member in three steps.
func (a *Agent) RotateGossipKey(ctx context.Context) (api.GossipKeyRotation, error) {
	if !a.gossipEncrypted {
		return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "gossip is not encrypted here: there is no key to rotate (start the agents with --gossip-key-file)")
	}
	if a.cfg.GossipKeyFile == "" {
		return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "this agent's gossip key came from --gossip-key, where it cannot keep a new one: start it with --gossip-key-file")
	}
	if !a.rotatingGossip.CompareAndSwap(false, true) {
		return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "a gossip key rotation started here is under way")
	}
	defer a.rotatingGossip.Store(false)
	start := time.Now()
	node := a.kv.Node()
	a.gossipKeyMu.Lock()
	gen := a.rotation.Generation + 1
	a.gossipKeyMu.Unlock()
	if e, ok := a.kv.Get(tables.GossipKeys, tables.RotationKey); ok {
		cur, err := tables.DecodeGossipKeyRotation(e.Key, e.Value)
		if err != nil {
			return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "the rotation row in the store does not read (%v): fix or remove it first", err)
		}
		gen = max(gen, cur.Generation+1)
	}
	newKey := make([]byte, 32)
	if _, err := rand.Read(newKey); err != nil {
		return api.GossipKeyRotation{}, err
	}
	r := tables.GossipKeyRotation{Generation: gen, Key: keyFingerprint(newKey), Initiator: a.cfg.Name, Started: start.UTC()}
	members := node.Members()
	var older []string // members that announce no gossip keys: they would not follow
	for _, m := range members {
		if m.Meta.GossipKeys == "" {
			older = append(older, fmt.Sprintf("%s (%s)", m.Name, m.Meta.Version))
		}
	}
	if len(older) > 0 {
		slices.Sort(older)
		return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "%s %s no part in gossip key rotations (an older vxnet): upgrade %s first",
			strings.Join(older, ", "), plural(len(older), "takes", "take"), plural(len(older), "it", "them"))
	}
	hostKeys := map[string]seal.PublicKey{}
	for _, m := range members {
		to, err := seal.ParsePublicKey(m.Meta.HostKey)
		if err != nil {
			return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "member %s announces no host key to seal the new gossip key to (an older vxnet?): upgrade it first", m.Name)
		}
		hostKeys[m.Name] = to
	}
	// The new key, sealed by this host to each member's host key, for each
	// step anew: only the members of now open it (not etcd, not a former
	// member holding the old key), and only this host makes or moves it.
	sealFor := func(phase string) error {
		r.Phase, r.Sealed = phase, map[string][]byte{}
		for name, to := range hostKeys {
			var err error
			if r.Sealed[name], err = seal.SealTo(a.seal.hostKey(), to, rotationContext(r, name), newKey); err != nil {
				return err
			}
		}
		return nil
	}
	a.log.Info("gossip key rotation started", "count", gen)
	steps := []struct {
		phase       string
		done        func(fps []string) bool
		what, what2 string // said of one host, of more
	}{
		{tables.PhaseInstall, func(fps []string) bool { return slices.Contains(fps, r.Key) }, "has not installed the new key", "have not installed the new key"},
		{tables.PhaseUse, func(fps []string) bool { return len(fps) > 0 && fps[0] == r.Key }, "does not encrypt with the new key", "do not encrypt with the new key"},
		{tables.PhaseDone, func(fps []string) bool { return len(fps) == 1 && fps[0] == r.Key }, "still holds an old key", "still hold an old key"},
	}
	// Another host's rotation since this one's last step: this one gives
	// way (that one carries on).
	overtaken := func(phase string) error {
		e, ok := a.kv.Get(tables.GossipKeys, tables.RotationKey)
		if !ok {
			return nil
		}
		cur, err := tables.DecodeGossipKeyRotation(e.Key, e.Value)
		if err == nil && cur.Key == r.Key {
			return nil
		}
		return apiError(api.CodeConflict, "", "gossip key rotation stopped at %q: another rotation started meanwhile (by %s); it carries on", phase, cur.Initiator)
	}
	var hosts []string
	for _, s := range steps {
		if s.phase != tables.PhaseInstall {
			if err := overtaken(s.phase); err != nil {
				return api.GossipKeyRotation{}, err
			}
		}
		if err := sealFor(s.phase); err != nil {
			return api.GossipKeyRotation{}, err
		}
		if _, err := a.kv.Put(tables.GossipKeys, tables.RotationKey, r.Encode()); err != nil {
			return api.GossipKeyRotation{}, err
		}
		a.followRotation(kvs.Entry{Table: tables.GossipKeys, Key: tables.RotationKey, Value: r.Encode()})
		var err error
		var behind []string
		if hosts, behind, err = a.waitKeys(ctx, s.done); err != nil {
			if err := overtaken(s.phase); err != nil {
				return api.GossipKeyRotation{}, err
			}
			return api.GossipKeyRotation{}, apiError(api.CodeUnavailable, "", "gossip key rotation stopped at %q: %s %s; every host still accepts the keys it held, so none is lost: run the rotation again once %s back",
				s.phase, strings.Join(behind, ", "), plural(len(behind), s.what, s.what2), plural(len(behind), "it is", "they are"))
		}
	}
	a.log.Info("gossip key rotation done", "count", gen, "nodes", len(hosts))
	out := api.GossipKeyRotation{Fingerprint: r.Key, Hosts: hosts, Took: time.Since(start).Round(time.Millisecond).String()}
	for _, d := range a.DownHosts() {
		out.Down = append(out.Down, d.Name)
	}
	return out, nil
}

// waitKeys waits until every member's metadata passes done; on timeout
// it returns the members that do not.
func (a *Agent) waitKeys(ctx context.Context, done func(fps []string) bool) (hosts, behind []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, rotatePhaseTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		hosts, behind = nil, nil
		for _, m := range a.kv.Node().Members() {
			hosts = append(hosts, m.Name)
			var fps []string
			if m.Meta.GossipKeys != "" {
				fps = strings.Split(m.Meta.GossipKeys, ",")
			}
			if !done(fps) {
				behind = append(behind, m.Name)
			}
		}
		if len(behind) == 0 {
			slices.Sort(hosts)
			return hosts, nil, nil
		}
		select {
		case <-ctx.Done():
			slices.Sort(behind)
			return nil, behind, ctx.Err()
		case <-tick.C:
		}
	}
}

// plural is one or other, as n is 1 or not.
func plural(n int, one, other string) string {
	if n == 1 {
		return one
	}
	return other
}
