package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealing a secret to one host (the agent hands a new gossip key to each
// member this way): an ephemeral X25519 key pair per message, its
// Diffie-Hellman with the host's static key, HKDF-SHA256 (salt: both
// public keys; info: the caller's context) to an AES-256-GCM key used
// once (so a zero nonce), the context again as additional data. The
// message is the ephemeral public key, then the ciphertext and its tag.
// Only the holder of the static private key opens it.

const boxSalt = "vxnet seal to host v1"

func boxAEAD(secret []byte, eph, to PublicKey, context []byte) (cipher.AEAD, error) {
	salt := append(append([]byte(boxSalt), eph[:]...), to[:]...)
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

// SealTo seals msg for the holder of the static key to, bound to context.
func SealTo(to PublicKey, context, msg []byte) ([]byte, error) {
	eph, err := NewKeyPair()
	if err != nil {
		return nil, err
	}
	secret, err := dh(eph, to)
	if err != nil {
		return nil, fmt.Errorf("seal: to %s: %w", to, err)
	}
	aead, err := boxAEAD(secret, eph.pub, to, context)
	clear(secret)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), eph.pub[:]...)
	return aead.Seal(out, make([]byte, aead.NonceSize()), msg, context), nil
}

// OpenSealed opens what SealTo sealed for k with the same context.
func (k *KeyPair) OpenSealed(context, sealed []byte) ([]byte, error) {
	if len(sealed) < PublicKeyLen+16 {
		return nil, errors.New("seal: sealed message too short")
	}
	var eph PublicKey
	copy(eph[:], sealed[:PublicKeyLen])
	secret, err := dh(k, eph)
	if err != nil {
		return nil, fmt.Errorf("seal: open: %w", err)
	}
	aead, err := boxAEAD(secret, eph, k.pub, context)
	clear(secret)
	if err != nil {
		return nil, err
	}
	msg, err := aead.Open(nil, make([]byte, aead.NonceSize()), sealed[PublicKeyLen:], context)
	if err != nil {
		return nil, errors.New("seal: open: not sealed for this key, or altered")
	}
	return msg, nil
}
