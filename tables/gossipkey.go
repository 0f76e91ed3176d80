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

// GossipKeyRotation is the row. The new key travels sealed with the key
// every member held when the rotation began (AES-GCM, by the agent), so
// that a store outside the agents (etcd) never holds it in clear.
type GossipKeyRotation struct {
	Generation int    // one more than the rotation before
	Phase      string // PhaseInstall, PhaseUse or PhaseDone
	// Key is the new key's fingerprint; Sealed the key, sealed with the
	// key whose fingerprint is SealedBy.
	Key, SealedBy string
	Sealed        []byte
	Initiator     string
	Started       time.Time
}

type gossipKeyWire struct {
	V          int       `json:"v,omitempty"`
	Generation int       `json:"generation"`
	Phase      string    `json:"phase"`
	Key        string    `json:"key"`
	SealedBy   string    `json:"sealedBy"`
	Sealed     string    `json:"sealed"`
	Initiator  string    `json:"initiator"`
	Started    time.Time `json:"started"`
}

// Encode is r's wire form.
func (r GossipKeyRotation) Encode() []byte {
	b, _ := json.Marshal(gossipKeyWire{V: 1, Generation: r.Generation, Phase: r.Phase, Key: r.Key, SealedBy: r.SealedBy,
		Sealed: base64.StdEncoding.EncodeToString(r.Sealed), Initiator: r.Initiator, Started: r.Started}) // plain fields: cannot fail
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
	sealed, err := base64.StdEncoding.DecodeString(w.Sealed)
	if err != nil || len(sealed) < 12+16+16 {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "sealed", w.Sealed, "want base64 of a sealed key"}
	}
	if len(w.Key) != 16 || len(w.SealedBy) != 16 {
		return GossipKeyRotation{}, &RowError{GossipKeys, key, "key", w.Key + "/" + w.SealedBy, "want 16 hex digits each (key fingerprints)"}
	}
	return GossipKeyRotation{Generation: w.Generation, Phase: w.Phase, Key: w.Key, SealedBy: w.SealedBy, Sealed: sealed, Initiator: w.Initiator, Started: w.Started}, nil
}
