package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Sizes and values of the wire format (see the package documentation).
const (
	VXLANLen    = 8                             // the VXLAN header, in clear
	MarkerIndex = 7                             // the VXLAN header's last, reserved byte
	Marker      = 0x01                          // in MarkerIndex: sealed, format 1
	IDLen       = 4                             // key id
	CounterLen  = 8                             // counter
	HeaderLen   = VXLANLen + IDLen + CounterLen // additional data: 20
	TagLen      = 16                            // the AEAD's tag
	Overhead    = IDLen + CounterLen + TagLen   // bytes a sealed datagram adds: 28
	KeyLen      = 32                            // a direction key
	NonceLen    = 12                            // the AEAD's nonce

	// MaxCounter is how many datagrams one key seals; a receiver refuses
	// counters from MaxCounter on. Keys are rotated long before.
	MaxCounter = 1 << 48
)

// Suite is an AEAD for sealed datagrams.
type Suite uint8

const (
	AES256GCM        Suite = 1 // AES-256-GCM
	ChaCha20Poly1305 Suite = 2 // ChaCha20-Poly1305
)

func (s Suite) String() string {
	switch s {
	case AES256GCM:
		return "aes-256-gcm"
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("suite(%d)", uint8(s))
}

// ParseSuite parses a suite's name as String writes it.
func ParseSuite(s string) (Suite, error) {
	switch s {
	case "aes-256-gcm":
		return AES256GCM, nil
	case "chacha20-poly1305":
		return ChaCha20Poly1305, nil
	}
	return 0, fmt.Errorf("seal: unknown cipher %q (aes-256-gcm or chacha20-poly1305)", s)
}

// HasAES reports whether this CPU has instructions for AES-GCM (AES and
// carry-less multiplication), which make it faster than
// ChaCha20-Poly1305.
func HasAES() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64", "ppc64le":
		return true
	}
	return false
}

// Pick is the suite for a pair of hosts: AES-256-GCM when both have AES
// instructions (HasAES), ChaCha20-Poly1305 otherwise.
func Pick(localAES, remoteAES bool) Suite {
	if localAES && remoteAES {
		return AES256GCM
	}
	return ChaCha20Poly1305
}

func newAEAD(s Suite, key []byte) (cipher.AEAD, error) {
	switch s {
	case AES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("seal: unknown cipher %d", uint8(s))
}

// Errors of Seal and Open. Each is a reason to drop the datagram; the
// data plane counts them apart.
var (
	ErrShort     = errors.New("seal: datagram too short to be sealed")
	ErrNotSealed = errors.New("seal: datagram not sealed (no marker)")
	ErrBadTag    = errors.New("seal: authentication failed")
	ErrReplay    = errors.New("seal: counter replayed or older than the window")
	ErrExhausted = errors.New("seal: key has sealed its last datagram; rotate")
	ErrRoom      = errors.New("seal: no room after the frame for the tag")
)

// Scratch is a packet loop's own working memory for Seal and Open: one
// per goroutine, never shared.
type Scratch struct {
	nonce [NonceLen]byte
}

func (s *Scratch) nonceFor(ctr uint64) []byte {
	binary.BigEndian.PutUint64(s.nonce[NonceLen-8:], ctr)
	return s.nonce[:]
}

// SendKey seals datagrams in one direction, from this host to a peer.
// Safe for concurrent use: each datagram takes the next counter.
type SendKey struct {
	aead  cipher.AEAD
	id    uint32
	suite Suite
	next  atomic.Uint64
}

// NewSendKey makes a sending key from a 32-byte key and its id.
func NewSendKey(s Suite, key []byte, id uint32) (*SendKey, error) {
	a, err := newAEAD(s, key)
	if err != nil {
		return nil, err
	}
	return &SendKey{aead: a, id: id, suite: s}, nil
}

// ID is the key id the datagrams this key seals carry.
func (k *SendKey) ID() uint32 { return k.id }

// Suite is the key's AEAD.
func (k *SendKey) Suite() Suite { return k.suite }

// Sent is how many counters the key has handed out.
func (k *SendKey) Sent() uint64 { return k.next.Load() }

// Reserve hands out n consecutive counters, the first returned; false
// when the key has not that many left (ErrExhausted).
func (k *SendKey) Reserve(n int) (uint64, bool) {
	end := k.next.Add(uint64(n))
	if end > MaxCounter || end < uint64(n) {
		return 0, false
	}
	return end - uint64(n), true
}

// Seal seals the datagram in b in place with counter ctr (from Reserve):
// b[:VXLANLen] holds the VXLAN header, b[VXLANLen:HeaderLen] is room for the
// seal header, b[HeaderLen:] the inner frame, and cap(b) leaves TagLen
// bytes after it. It returns b grown by the tag.
func (k *SendKey) Seal(s *Scratch, b []byte, ctr uint64) ([]byte, error) {
	if len(b) < HeaderLen {
		return nil, ErrShort
	}
	if cap(b)-len(b) < TagLen {
		return nil, ErrRoom
	}
	if ctr >= MaxCounter {
		return nil, ErrExhausted
	}
	b[MarkerIndex] = Marker
	binary.BigEndian.PutUint32(b[VXLANLen:], k.id)
	binary.BigEndian.PutUint64(b[VXLANLen+IDLen:], ctr)
	frame := b[HeaderLen:]
	k.aead.Seal(frame[:0], s.nonceFor(ctr), frame, b[:HeaderLen])
	return b[:len(b)+TagLen], nil
}

// Header is the clear part of a sealed datagram.
type Header struct {
	VNI     uint32
	ID      uint32
	Counter uint64
}

// ParseHeader reads the clear header of the sealed datagram b (from the
// VXLAN header on); ErrShort or ErrNotSealed if it is none.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen+TagLen {
		return Header{}, ErrShort
	}
	if b[MarkerIndex] != Marker {
		return Header{}, ErrNotSealed
	}
	return Header{
		VNI:     binary.BigEndian.Uint32(b[4:]) >> 8,
		ID:      binary.BigEndian.Uint32(b[VXLANLen:]),
		Counter: binary.BigEndian.Uint64(b[VXLANLen+IDLen:]),
	}, nil
}

// RecvKey opens datagrams in one direction, from a peer to this host.
// Safe for concurrent use.
type RecvKey struct {
	aead   cipher.AEAD
	id     uint32
	suite  Suite
	window Window
}

// NewRecvKey makes a receiving key from a 32-byte key and its id.
func NewRecvKey(s Suite, key []byte, id uint32) (*RecvKey, error) {
	a, err := newAEAD(s, key)
	if err != nil {
		return nil, err
	}
	return &RecvKey{aead: a, id: id, suite: s}, nil
}

// ID is the key id of the datagrams this key opens.
func (k *RecvKey) ID() uint32 { return k.id }

// Suite is the key's AEAD.
func (k *RecvKey) Suite() Suite { return k.suite }

// Open authenticates and decrypts the sealed datagram b (from the VXLAN
// header on, whose header h is) in place and returns the inner frame,
// which aliases b. It checks the counter against the replay window before
// and records it after the tag verified. b is unchanged on ErrShort,
// ErrNotSealed and ErrReplay, and unusable after ErrBadTag.
func (k *RecvKey) Open(s *Scratch, b []byte, h Header) ([]byte, error) {
	if len(b) < HeaderLen+TagLen {
		return nil, ErrShort
	}
	if b[MarkerIndex] != Marker {
		return nil, ErrNotSealed
	}
	if h.Counter >= MaxCounter || !k.window.Fresh(h.Counter) {
		return nil, ErrReplay
	}
	frame, err := k.aead.Open(b[HeaderLen:HeaderLen], s.nonceFor(h.Counter), b[HeaderLen:], b[:HeaderLen])
	if err != nil {
		return nil, ErrBadTag
	}
	if !k.window.Mark(h.Counter) {
		return nil, ErrReplay // another loop opened the same counter first
	}
	return frame, nil
}
