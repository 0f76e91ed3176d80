package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// PublicKeyLen is the size of an X25519 public key.
const PublicKeyLen = 32

// PublicKey is an X25519 public key as hosts announce it.
type PublicKey [PublicKeyLen]byte

// String writes the key in standard base64, as configuration files and
// `cluster` output show it.
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// ParsePublicKey reads a key String wrote.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != PublicKeyLen {
		return p, fmt.Errorf("seal: public key %q: want %d bytes in base64", s, PublicKeyLen)
	}
	copy(p[:], b)
	return p, nil
}

// KeyPair is an X25519 key pair: a host's static or session key.
type KeyPair struct {
	priv *ecdh.PrivateKey
	pub  PublicKey
}

// NewKeyPair makes a key pair from the system's random source.
func NewKeyPair() (*KeyPair, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: new key: %w", err)
	}
	return pairOf(k), nil
}

func pairOf(k *ecdh.PrivateKey) *KeyPair {
	p := &KeyPair{priv: k}
	copy(p.pub[:], k.PublicKey().Bytes())
	return p
}

// Public is the pair's public key.
func (k *KeyPair) Public() PublicKey { return k.pub }

// keyFileMode is the only mode a private key file may have: its owner
// reads and writes it, nobody else.
const keyFileMode = 0o600

// LoadOrCreateStatic reads the host's static key pair from path, or makes
// one and writes it there (WriteKeyFile) when the file does not exist.
func LoadOrCreateStatic(path string) (*KeyPair, error) {
	k, err := LoadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if k, err = NewKeyPair(); err != nil {
			return nil, err
		}
		if err := WriteKeyFile(path, k); err != nil {
			return nil, err
		}
		return k, nil
	}
	return k, err
}

// LoadKeyFile reads a private key (base64 on one line) from path. A file
// that others may read, or that holds anything but a key, is an error: a
// host must not use a key others may have read. An error for a file that
// does not exist wraps fs.ErrNotExist.
func LoadKeyFile(path string) (*KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key file: %w", err)
	}
	// Windows has no such mode bits (Stat reports 0666 for any writable
	// file): the data directory's ACL protects the key there.
	if m := st.Mode().Perm(); runtime.GOOS != "windows" && m&0o077 != 0 {
		return nil, fmt.Errorf("seal: key file %s has mode %#o: its group or others may have read it; make a new key (remove the file) or chmod 600 it if nobody did", path, m)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("seal: key file %s: want a 32-byte X25519 private key in base64 on one line", path)
	}
	k, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return pairOf(k), nil
}

// WriteKeyFile writes k's private key to path, which must not exist,
// readable by its owner alone. It goes to a temporary file of that mode
// first and is renamed, so that a crash never leaves a half-written key or
// one others could read.
func WriteKeyFile(path string, k *KeyPair) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("seal: key file %s exists already; not overwritten", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seal: key file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("seal: key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	line := base64.StdEncoding.EncodeToString(k.priv.Bytes()) + "\n"
	err = tmp.Chmod(keyFileMode)
	if err == nil {
		_, err = tmp.WriteString(line)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path) // fails if path appeared meanwhile
	}
	if err != nil {
		return fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return nil
}

// Local is this host's side of a pair: its static and current session key
// pairs.
type Local struct {
	Static  *KeyPair
	Session *KeyPair
}

// Remote is a peer's side as it announced it: its static and session
// public keys.
type Remote struct {
	Static  PublicKey
	Session PublicKey
}

// Keys are the keys of one pair of hosts for one pair of sessions, as
// this host holds them.
type Keys struct {
	Send *SendKey
	Recv *RecvKey
}

// salt of the key derivation: names the format, so that keys of another
// version or another program never match.
const salt = "vxnet seal v1"

// Derive computes the keys this host shares with a peer (see the package
// documentation). Both hosts derive the same two direction keys, each the
// other's Send for its own Recv. It fails when the peer's keys are the
// host's own, or when a peer's key gives no shared secret (an invalid or
// low-order point).
func Derive(s Suite, local Local, remote Remote) (Keys, error) {
	if local.Static == nil || local.Session == nil {
		return Keys{}, errors.New("seal: derive: local keys missing")
	}
	if remote.Static == local.Static.pub {
		return Keys{}, errors.New("seal: derive: the peer's static key is this host's own")
	}
	ss, err := dh(local.Static, remote.Static)
	if err != nil {
		return Keys{}, fmt.Errorf("seal: derive: peer static key %s: %w", remote.Static, err)
	}
	ee, err := dh(local.Session, remote.Session)
	if err != nil {
		return Keys{}, fmt.Errorf("seal: derive: peer session key %s: %w", remote.Session, err)
	}
	secret := append(ss, ee...)

	// The lower static key is side 0, whichever host computes.
	lowStatic, highStatic := local.Static.pub, remote.Static
	lowSession, highSession := local.Session.pub, remote.Session
	localIsLow := bytes.Compare(lowStatic[:], highStatic[:]) < 0
	if !localIsLow {
		lowStatic, highStatic = highStatic, lowStatic
		lowSession, highSession = highSession, lowSession
	}
	info := make([]byte, 0, 1+4*PublicKeyLen)
	info = append(info, byte(s))
	info = append(info, lowStatic[:]...)
	info = append(info, highStatic[:]...)
	info = append(info, lowSession[:]...)
	info = append(info, highSession[:]...)
	okm, err := hkdf.Key(sha256.New, secret, []byte(salt), string(info), 2*KeyLen+2*IDLen)
	if err != nil {
		return Keys{}, fmt.Errorf("seal: derive: %w", err)
	}
	lowToHigh, highToLow := okm[:KeyLen], okm[KeyLen:2*KeyLen]
	idLowToHigh := binary.BigEndian.Uint32(okm[2*KeyLen:])
	idHighToLow := binary.BigEndian.Uint32(okm[2*KeyLen+IDLen:])
	sendKey, sendID, recvKey, recvID := lowToHigh, idLowToHigh, highToLow, idHighToLow
	if !localIsLow {
		sendKey, sendID, recvKey, recvID = highToLow, idHighToLow, lowToHigh, idLowToHigh
	}
	send, err := NewSendKey(s, sendKey, sendID)
	if err != nil {
		return Keys{}, err
	}
	recv, err := NewRecvKey(s, recvKey, recvID)
	if err != nil {
		return Keys{}, err
	}
	clear(okm)
	clear(secret)
	return Keys{Send: send, Recv: recv}, nil
}

func dh(k *KeyPair, peer PublicKey) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, err
	}
	return k.priv.ECDH(pub) // an error for low-order points (all-zero result)
}
