// Package join admits hosts into a vxnet cluster with join tokens, as
// `docker swarm join --token` does.
//
// The cluster has a join certificate (a self-signed ECDSA key pair that
// `vxnet cluster init` makes and every member keeps). A token is
//
//	vxn1-PIN-ID.SECRET
//
// PIN is the SHA-256 of the certificate's public key (base32): the joiner
// trusts the agent it dials only if that agent shows this key, so a token
// cannot be used to hand the cluster's secrets to an impostor. ID names
// the token in `vxnet cluster token ls`; SECRET is 128 random bits, of
// which the cluster keeps only a hash. The joiner sends ID.SECRET over TLS
// to any member's join port; the member checks it against the cluster's
// tokens table (not revoked, not expired) and answers with what the new
// host needs: the gossip keys, the members to join, the join certificate
// (so that it admits hosts too) and where the tables are kept. A revoked
// or expired token is refused; nothing secret travels without a token.
package join

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// Prefix starts every token: the format's name and version.
const Prefix = "vxn1"

// DefaultPort is the join service's TCP port.
const DefaultPort = 7947

const (
	idLen     = 6
	secretLen = 26 // 130 bits of base32 text (128 random)
	pinLen    = 52 // SHA-256, base32 without padding
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token is a parsed join token.
type Token struct {
	Pin    string // the join certificate's key, as Pin computes it
	ID     string
	Secret string
}

// NewToken makes a token for the certificate whose key is pin.
func NewToken(pin string) (Token, error) {
	id, err := randomText(idLen)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomText(secretLen)
	if err != nil {
		return Token{}, err
	}
	return Token{Pin: pin, ID: id, Secret: secret}, nil
}

func randomText(n int) (string, error) {
	b := make([]byte, (n*5+7)/8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("join: random token: %w", err)
	}
	return strings.ToLower(b32.EncodeToString(b))[:n], nil
}

// String is the token as a person copies it.
func (t Token) String() string {
	return Prefix + "-" + t.Pin + "-" + t.ID + "." + t.Secret
}

// Credential is what a joiner presents: ID.SECRET.
func (t Token) Credential() string { return t.ID + "." + t.Secret }

// ParseToken reads a token; errors say which part is wrong, never
// repeating the secret.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "-")
	if len(parts) != 3 || parts[0] != Prefix {
		return Token{}, fmt.Errorf("join token: want %s-PIN-ID.SECRET (as vxnet cluster init or vxnet cluster token create print it)", Prefix)
	}
	t := Token{Pin: parts[1]}
	if !ValidPin(t.Pin) {
		return Token{}, fmt.Errorf("join token: PIN %q: want %d base32 characters", t.Pin, pinLen)
	}
	var ok bool
	if t.ID, t.Secret, ok = strings.Cut(parts[2], "."); !ok {
		return Token{}, fmt.Errorf("join token: want ID.SECRET after the PIN")
	}
	if err := checkCredential(t.ID, t.Secret); err != nil {
		return Token{}, err
	}
	return t, nil
}

// ParseCredential reads ID.SECRET as a joiner sends it.
func ParseCredential(s string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(s, ".")
	if !ok {
		return "", "", fmt.Errorf("join token: want ID.SECRET")
	}
	return id, secret, checkCredential(id, secret)
}

func checkCredential(id, secret string) error {
	if len(id) != idLen || !isBase32(id) {
		return fmt.Errorf("join token: ID %q: want %d characters a-z, 2-7", id, idLen)
	}
	if len(secret) != secretLen || !isBase32(secret) {
		return fmt.Errorf("join token: SECRET: want %d characters a-z, 2-7", secretLen)
	}
	return nil
}

// ValidPin tells whether pin is a PIN's shape.
func ValidPin(pin string) bool { return len(pin) == pinLen && isBase32(pin) }

// ValidID tells whether id is a token ID's shape.
func ValidID(id string) bool { return len(id) == idLen && isBase32(id) }

func isBase32(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return s != ""
}

// HashSecret is what the cluster keeps of a secret: its SHA-256, in hex.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// SecretMatches compares a presented secret with a kept hash in constant
// time.
func SecretMatches(secret, hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
