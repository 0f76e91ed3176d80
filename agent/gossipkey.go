package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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
// down all through a rotation comes back with the old key only: it joins
// again with a join token.

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

// rotationContext binds a sealed key to its rotation and its member.
func rotationContext(gen int, member, fingerprint string) []byte {
	return []byte("vxnet gossip key rotation " + strconv.Itoa(gen) + " " + fingerprint + " for " + member)
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
		}
	}
}

// phaseOrder places a phase within its rotation.
var phaseOrder = map[string]int{tables.PhaseInstall: 1, tables.PhaseUse: 2, tables.PhaseDone: 3}

// followRotation takes this host's keyring to the row's phase, keeps the
// keys in the key file, and shows them in the gossip metadata. A row
// older than one already followed (an earlier generation, or an earlier
// phase of this one: a replay, or a store read late) is ignored.
func (a *Agent) followRotation(e kvs.Entry) {
	r, err := tables.DecodeGossipKeyRotation(e.Key, e.Value)
	if err != nil {
		a.skipped.Report(tables.GossipKeys, err)
		return
	}
	a.gossipKeyMu.Lock()
	defer a.gossipKeyMu.Unlock()
	at := [2]int{r.Generation, phaseOrder[r.Phase]}
	if at[0] < a.rotationAt[0] || at[0] == a.rotationAt[0] && at[1] <= a.rotationAt[1] {
		return
	}
	node := a.kv.Node()
	have := node.Keys()
	var newKey []byte
	for _, k := range have {
		if keyFingerprint(k) == r.Key {
			newKey = k
		}
	}
	if newKey == nil {
		sealed, ok := r.Sealed[a.cfg.Name]
		if !ok {
			a.log.Warn("gossip key rotation: the new key was not sealed to this host (it was not a member when the rotation began); it gets the key by joining again with a join token",
				"count", r.Generation)
			return
		}
		newKey, err = a.seal.hostKey().OpenSealed(rotationContext(r.Generation, a.cfg.Name, r.Key), sealed)
		if err != nil || keyFingerprint(newKey) != r.Key {
			a.log.Warn("gossip key rotation: the new key sealed to this host does not open", "count", r.Generation, "error", err)
			return
		}
		// Keys of rotations that stopped halfway go: a host holds the key
		// in use and the new one, no more.
		for _, k := range have[min(1, len(have)):] {
			node.RemoveKey(k)
		}
		if err := node.InstallKey(newKey); err != nil {
			a.log.Warn("gossip key rotation: installing the new key", "error", err)
			return
		}
	}
	switch r.Phase {
	case tables.PhaseUse, tables.PhaseDone:
		if err := node.UseKey(newKey); err != nil {
			a.log.Warn("gossip key rotation: using the new key", "error", err)
			return
		}
	}
	if r.Phase == tables.PhaseDone {
		for _, k := range node.Keys() {
			if keyFingerprint(k) != r.Key {
				node.RemoveKey(k)
			}
		}
	}
	a.rotationAt = at
	keys := node.Keys()
	if slices.EqualFunc(keys, have, func(x, y []byte) bool { return string(x) == string(y) }) {
		return
	}
	if err := a.keepGossipKeys(keys); err != nil {
		// Not shown as done: the rotation stops here, naming this host,
		// rather than leave it unable to come back after a restart.
		a.log.Error("gossip key rotation: the new keys are not kept, so this host does not show the step done", "path", a.cfg.GossipKeyFile, "error", err)
		return
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
	gen := 1
	if e, ok := a.kv.Get(tables.GossipKeys, tables.RotationKey); ok {
		if r, err := tables.DecodeGossipKeyRotation(e.Key, e.Value); err == nil {
			gen = r.Generation + 1
		}
	}
	newKey := make([]byte, 32)
	if _, err := rand.Read(newKey); err != nil {
		return api.GossipKeyRotation{}, err
	}
	r := tables.GossipKeyRotation{Generation: gen, Key: keyFingerprint(newKey), Sealed: map[string][]byte{},
		Initiator: a.cfg.Name, Started: start.UTC()}
	// The new key, sealed to each member's host key: only the members of
	// now open it (not etcd, not a former member holding the old key).
	for _, m := range node.Members() {
		to, err := seal.ParsePublicKey(m.Meta.HostKey)
		if err != nil {
			return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "member %s announces no host key to seal the new gossip key to (an older vxnet?): upgrade it first", m.Name)
		}
		if r.Sealed[m.Name], err = seal.SealTo(to, rotationContext(gen, m.Name, r.Key), newKey); err != nil {
			return api.GossipKeyRotation{}, err
		}
	}
	a.log.Info("gossip key rotation started", "count", gen)
	steps := []struct {
		phase string
		done  func(fps []string) bool
		what  string
	}{
		{tables.PhaseInstall, func(fps []string) bool { return slices.Contains(fps, r.Key) }, "has not installed the new key"},
		{tables.PhaseUse, func(fps []string) bool { return len(fps) > 0 && fps[0] == r.Key }, "does not encrypt with the new key"},
		{tables.PhaseDone, func(fps []string) bool { return len(fps) == 1 && fps[0] == r.Key }, "still holds an old key"},
	}
	var hosts []string
	for _, s := range steps {
		// Another host's rotation since the last step: this one gives way.
		if e, ok := a.kv.Get(tables.GossipKeys, tables.RotationKey); ok && s.phase != tables.PhaseInstall {
			if cur, err := tables.DecodeGossipKeyRotation(e.Key, e.Value); err != nil || cur.Key != r.Key {
				return api.GossipKeyRotation{}, apiError(api.CodeConflict, "", "gossip key rotation stopped at %q: another rotation started meanwhile (by %s); it carries on", s.phase, cur.Initiator)
			}
		}
		r.Phase = s.phase
		if _, err := a.kv.Put(tables.GossipKeys, tables.RotationKey, r.Encode()); err != nil {
			return api.GossipKeyRotation{}, err
		}
		a.followRotation(kvs.Entry{Table: tables.GossipKeys, Key: tables.RotationKey, Value: r.Encode()})
		var err error
		if hosts, err = a.waitKeys(ctx, s.done); err != nil {
			return api.GossipKeyRotation{}, apiError(api.CodeUnavailable, "", "gossip key rotation stopped at %q: %v %s; every host still accepts the keys it held, so none is lost: run the rotation again once it is back", s.phase, err, s.what)
		}
	}
	a.log.Info("gossip key rotation done", "count", gen, "nodes", len(hosts))
	return api.GossipKeyRotation{Fingerprint: r.Key, Hosts: hosts, Took: time.Since(start).Round(time.Millisecond).String()}, nil
}

// waitKeys waits until every member's metadata passes done.
func (a *Agent) waitKeys(ctx context.Context, done func(fps []string) bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, rotatePhaseTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var hosts, behind []string
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
			return hosts, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s", strings.Join(behind, ", "))
		case <-tick.C:
		}
	}
}
