package agent

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
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

// rotationAAD binds a sealed key to its rotation.
func rotationAAD(gen int) []byte { return []byte("vxnet gossip key rotation " + strconv.Itoa(gen)) }

// sealKey seals k with by (a gossip key: 16, 24 or 32 bytes, AES-GCM).
func sealKey(by, k []byte, gen int) ([]byte, error) {
	block, err := aes.NewCipher(by)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, k, rotationAAD(gen)), nil
}

// openKey opens what sealKey sealed.
func openKey(by, sealed []byte, gen int) ([]byte, error) {
	block, err := aes.NewCipher(by)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], rotationAAD(gen))
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

// followRotation takes this host's keyring to the row's phase, keeps the
// keys in the key file, and shows them in the gossip metadata.
func (a *Agent) followRotation(e kvs.Entry) {
	r, err := tables.DecodeGossipKeyRotation(e.Key, e.Value)
	if err != nil {
		a.skipped.Report(tables.GossipKeys, err)
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
		for _, k := range have {
			if keyFingerprint(k) == r.SealedBy {
				newKey, err = openKey(k, r.Sealed, r.Generation)
			}
		}
		if newKey == nil {
			a.log.Warn("gossip key rotation: this host holds neither the new key nor the one it is sealed with; join again with a join token",
				"count", r.Generation, "error", err)
			return
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
	keys := node.Keys()
	if slices.EqualFunc(keys, have, func(x, y []byte) bool { return string(x) == string(y) }) {
		return
	}
	if err := a.keepGossipKeys(keys); err != nil {
		a.log.Error("gossip key rotation: the keys are in use but not kept: a restart would leave the cluster", "path", a.cfg.GossipKeyFile, "error", err)
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
	inUse := node.Keys()[0]
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
	sealed, err := sealKey(inUse, newKey, gen)
	if err != nil {
		return api.GossipKeyRotation{}, err
	}
	r := tables.GossipKeyRotation{Generation: gen, Key: keyFingerprint(newKey), SealedBy: keyFingerprint(inUse), Sealed: sealed,
		Initiator: a.cfg.Name, Started: start.UTC()}
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
		r.Phase = s.phase
		if _, err := a.kv.Put(tables.GossipKeys, tables.RotationKey, r.Encode()); err != nil {
			return api.GossipKeyRotation{}, err
		}
		a.followRotation(kvs.Entry{Table: tables.GossipKeys, Key: tables.RotationKey, Value: r.Encode()})
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
