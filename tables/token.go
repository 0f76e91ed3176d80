package tables

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/vxnet/vxnet/join"
)

// Tokens is a cluster table: the join tokens that admit new hosts
// (package join). Key: the token's ID. The row keeps the hash of the
// secret, never the secret. A revoked token keeps its row (so that ls
// shows it and no host brings it back), with Revoked set.
const Tokens = "tokens"

// Token is a join token's row.
type Token struct {
	ID string
	// Pin is the join certificate's key the token was made for
	// (join.Pin): a token admits hosts only where that certificate is
	// the join service's, never into another cluster a host moved to.
	Pin     string
	Hash    string // join.HashSecret of the secret
	Creator string
	Created time.Time
	Expires time.Time // zero: never
	Revoked time.Time // zero: not revoked
}

// State is "active", "expired" or "revoked" at now.
func (t Token) State(now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

type tokenWire struct {
	V       int       `json:"v,omitempty"`
	ID      string    `json:"id"`
	Pin     string    `json:"pin"`
	Hash    string    `json:"hash"`
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
}

// Encode is t's wire form.
func (t Token) Encode() []byte {
	b, _ := json.Marshal(tokenWire{V: 1, ID: t.ID, Pin: t.Pin, Hash: t.Hash, Creator: t.Creator, Created: t.Created, Expires: t.Expires, Revoked: t.Revoked}) // plain fields: cannot fail
	return b
}

// DecodeToken reads the row at key of Tokens; the key must be the row's ID.
func DecodeToken(key string, value []byte) (Token, error) {
	var w tokenWire
	if err := json.Unmarshal(value, &w); err != nil {
		return Token{}, &RowError{Table: Tokens, Key: key, Reason: "not a token row: " + err.Error()}
	}
	if err := checkVersion(Tokens, key, w.V); err != nil {
		return Token{}, err
	}
	if w.ID != key {
		return Token{}, &RowError{Tokens, key, "id", w.ID, "does not match the key"}
	}
	if !join.ValidID(w.ID) {
		return Token{}, &RowError{Tokens, key, "id", w.ID, "want 6 characters a-z, 2-7"}
	}
	if h, err := hex.DecodeString(w.Hash); err != nil || len(h) != 32 {
		return Token{}, &RowError{Tokens, key, "hash", w.Hash, "want 64 hex digits (SHA-256)"}
	}
	if !join.ValidPin(w.Pin) {
		return Token{}, &RowError{Tokens, key, "pin", w.Pin, "want 52 characters a-z, 2-7 (the join certificate's key)"}
	}
	return Token{ID: w.ID, Pin: w.Pin, Hash: w.Hash, Creator: w.Creator, Created: w.Created, Expires: w.Expires, Revoked: w.Revoked}, nil
}
