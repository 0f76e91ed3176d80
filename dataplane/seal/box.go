package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealing a secret from one host to another (the agent hands a new gossip
// key to each member this way): an ephemeral X25519 key pair per message;
// its Diffie-Hellman with the recipient's static key, and the sender's
// static key's with the recipient's, both into HKDF-SHA256 (salt: the
// three public keys; info: the caller's context) to an AES-256-GCM key
// used once (so a zero nonce), the context again as additional data. The
// message is the ephemeral public key, then the ciphertext and its tag.
// Only the holder of the recipient's static private key opens it, and
// only a message from the holder of the sender's static private key
// opens.

const boxSalt = "vxnet seal to host v1"

// boxAEAD derives a message's AEAD from its two Diffie-Hellman results
// (ephemeral-static es, static-static ss), which it clears, and the three
// public keys.
func boxAEAD(es, ss []byte, eph, from, to PublicKey, context []byte) (cipher.AEAD, error) {
	secret := append(append(make([]byte, 0, len(es)+len(ss)), es...), ss...)
	clear(es)
	clear(ss)
	defer clear(secret)
	salt := append(append(append([]byte(boxSalt), eph[:]...), from[:]...), to[:]...)
	key, err := hkdf.Key(sha256.New, secret, salt, string(context), KeyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealTo seals msg from the holder of from for the holder of the static
// key to, bound to context.
func SealTo(from *KeyPair, to PublicKey, context, msg []byte) ([]byte, error) {
	eph, err := NewKeyPair()
	if err != nil {
		return nil, err
	}
	es, err := dh(eph, to)
	if err != nil {
		return nil, fmt.Errorf("seal: to %s: %w", to, err)
	}
	ss, err := dh(from, to)
	if err != nil {
		return nil, fmt.Errorf("seal: to %s: %w", to, err)
	}
	aead, err := boxAEAD(es, ss, eph.pub, from.pub, to, context)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), eph.pub[:]...)
	return aead.Seal(out, make([]byte, aead.NonceSize()), msg, context), nil
}

// OpenSealed opens what SealTo sealed for k, from the holder of from,
// with the same context.
func (k *KeyPair) OpenSealed(from PublicKey, context, sealed []byte) ([]byte, error) {
	if len(sealed) < PublicKeyLen+16 {
		return nil, errors.New("seal: sealed message too short")
	}
	var eph PublicKey
	copy(eph[:], sealed[:PublicKeyLen])
	es, err := dh(k, eph)
	if err != nil {
		return nil, fmt.Errorf("seal: open: %w", err)
	}
	ss, err := dh(k, from)
	if err != nil {
		return nil, fmt.Errorf("seal: open: sender %s: %w", from, err)
	}
	aead, err := boxAEAD(es, ss, eph, from, k.pub, context)
	if err != nil {
		return nil, err
	}
	msg, err := aead.Open(nil, make([]byte, aead.NonceSize()), sealed[PublicKeyLen:], context)
	if err != nil {
		return nil, errors.New("seal: open: not sealed by that sender for this key, or altered")
	}
	return msg, nil
}
