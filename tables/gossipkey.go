package tables

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// GossipKeys is a cluster table of one row, RotationKey: the gossip key
// rotation under way or last done. Every agent follows it: it installs
// the new key, then encrypts with it, then drops the others, as Phase
// says, and shows which keys it holds in its gossip metadata; the host
// that started the rotation moves Phase on once every member shows the
// step done.
const GossipKeys = "gossip-keys"

// RotationKey is the key of GossipKeys' one row.
const RotationKey = "rotation"

// Phases of a gossip key rotation.
const (
	PhaseInstall = "install" // accept the new key
	PhaseUse     = "use"     // encrypt with the new key
	PhaseDone    = "done"    // drop every other key
)

// GossipKeyRotation is the row. The new key travels sealed to each
// member's own host key (seal.SealTo), so that only the members of the
// moment open it: not a store outside the agents (etcd), and not a former
// member who kept the old gossip key.
type GossipKeyRotation struct {
	Generation int    // one more than the rotation before
	Phase      string // PhaseInstall, PhaseUse or PhaseDone
	// Key is the new key's fingerprint; Sealed the key, sealed to each
	// member by name.
	Key       string
	Sealed    map[string][]byte
	Initiator string
	Started   time.Time
}

type gossipKeyWire struct {
	V          int               `json:"v,omitempty"`
	Generation int               `json:"generation"`
	Phase      string            `json:"phase"`
	Key        string            `json:"key"`
	Sealed     map[string]string `json:"sealed"`
	Initiator  string            `json:"initiator"`
	Started    time.Time         `json:"started"`
}

// Encode is r's wire form.
func (r GossipKeyRotation) Encode() []byte {
	w := gossipKeyWire{V: 1, Generation: r.Generation, Phase: r.Phase, Key: r.Key, Sealed: map[string]string{}, Initiator: r.Initiator, Started: r.Started}
	for name, b := range r.Sealed {
		w.Sealed[name] = base64.StdEncoding.EncodeToString(b)
	}
	b, _ := json.Marshal(w) // plain fields: cannot fail
	return b
}

// DecodeGossipKeyRotation reads the row at key of GossipKeys.
func DecodeGossipKeyRotation(key string, value []byte) (GossipKeyRotation, error) {
	var w gossipKeyWire
	if err := json.Unmarshal(value, &w); err != nil {
		return GossipKeyRotation{}, &RowError{Table: GossipKeys, Key: key, Reason: "not a gossip key rotation row: " + err.Error()}
	}
	if err := checkVersion(GossipKeys, key, w.V); err != nil {
		return GossipKeyRotation{}, err
	}
	if key != RotationKey {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "key", key, "want " + RotationKey}
	}
	switch w.Phase {
	case PhaseInstall, PhaseUse, PhaseDone:
	default:
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "phase", w.Phase, "want install, use or done"}
	}
	if w.Generation < 1 {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "generation", fmt.Sprint(w.Generation), "want 1 or more"}
	}
	if len(w.Key) != 16 {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "key", w.Key, "want 16 hex digits (a key fingerprint)"}
	}
	if len(w.Sealed) == 0 {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "sealed", "", "want the new key sealed to each member"}
	}
	r := GossipKeyRotation{Generation: w.Generation, Phase: w.Phase, Key: w.Key, Sealed: map[string][]byte{}, Initiator: w.Initiator, Started: w.Started}
	for name, text := range w.Sealed {
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(b) < 32+16 {
			return GossipKeyRotation{}, &RowError{GossipKeys, key, "sealed", name, "want base64 of a key sealed to that member"}
		}
		r.Sealed[name] = b
	}
	return r, nil
}
