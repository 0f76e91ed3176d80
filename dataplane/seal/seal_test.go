package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
)

var suites = []Suite{AES256GCM, ChaCha20Poly1305}

// pairKeys is a pair of hosts' keys for one session each.
func pairKeys(t testing.TB, s Suite) (a, b Keys) {
	t.Helper()
	la := Local{Static: mustPair(t), Session: mustPair(t)}
	lb := Local{Static: mustPair(t), Session: mustPair(t)}
	var err error
	a, err = Derive(s, la, Remote{Static: lb.Static.Public(), Session: lb.Session.Public()})
	if err != nil {
		t.Fatal(err)
	}
	b, err = Derive(s, lb, Remote{Static: la.Static.Public(), Session: la.Session.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func mustPair(t testing.TB) *KeyPair {
	t.Helper()
	k, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// datagram is a plain VXLAN datagram for vni with room for the seal
// header before frame and for the tag after it.
func datagram(vni uint32, frame []byte) []byte {
	b := make([]byte, HeaderLen+len(frame), HeaderLen+len(frame)+TagLen)
	b[0] = 0x08
	binary.BigEndian.PutUint32(b[4:], vni<<8)
	copy(b[HeaderLen:], frame)
	return b
}

func seal(t testing.TB, k *SendKey, s *Scratch, b []byte) []byte {
	t.Helper()
	ctr, ok := k.Reserve(1)
	if !ok {
		t.Fatal("Reserve: exhausted")
	}
	out, err := k.Seal(s, b, ctr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func open(k *RecvKey, s *Scratch, b []byte) ([]byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.ID != k.ID() {
		return nil, errors.New("key id differs")
	}
	return k.Open(s, b, h)
}

func TestSealOpen_roundTrip(t *testing.T) {
	for _, su := range suites {
		t.Run(su.String(), func(t *testing.T) {
			a, b := pairKeys(t, su)
			if a.Send.ID() != b.Recv.ID() || b.Send.ID() != a.Recv.ID() {
				t.Fatalf("ids: a send %08x recv %08x, b send %08x recv %08x", a.Send.ID(), a.Recv.ID(), b.Send.ID(), b.Recv.ID())
			}
			if a.Send.ID() == a.Recv.ID() {
				t.Fatalf("both directions have key id %08x", a.Send.ID())
			}
			var s Scratch
			for _, n := range []int{0, 1, 14, 64, 1450, 9000} {
				frame := make([]byte, n)
				rand.Read(frame)
				d := seal(t, a.Send, &s, datagram(4097, frame))
				if len(d) != HeaderLen+n+TagLen {
					t.Fatalf("%d-byte frame: sealed %d bytes, want %d", n, len(d), HeaderLen+n+TagLen)
				}
				if n >= 16 && bytes.Contains(d, frame[:16]) {
					t.Fatalf("%d-byte frame: clear bytes in the sealed datagram", n)
				}
				h, err := ParseHeader(d)
				if err != nil || h.VNI != 4097 || h.ID != a.Send.ID() {
					t.Fatalf("header %+v, %v", h, err)
				}
				got, err := open(b.Recv, &s, d)
				if err != nil {
					t.Fatalf("%d-byte frame: %v", n, err)
				}
				if !bytes.Equal(got, frame) {
					t.Fatalf("%d-byte frame: opened differs", n)
				}
				// The other direction's key opens nothing of this one.
				if _, err := b.Send.aead.Open(nil, s.nonceFor(h.Counter), d[HeaderLen:], d[:HeaderLen]); err == nil {
					t.Fatal("the reverse direction's key opened the datagram")
				}
			}
		})
	}
}

// TestOpen_everyTamper: changing any bit of the datagram from the VXLAN
// header on (header, key id, counter, ciphertext, tag) makes it fail,
// and the window is not moved by a failed datagram.
func TestOpen_everyTamper(t *testing.T) {
	for _, su := range suites {
		t.Run(su.String(), func(t *testing.T) {
			a, b := pairKeys(t, su)
			var s Scratch
			frame := []byte("an inner ethernet frame with a marker: VXNET-SECRET-MARKER")
			d := seal(t, a.Send, &s, datagram(77, frame))
			for i := range d {
				for _, flip := range []byte{0x01, 0x80} {
					c := append([]byte(nil), d...)
					c[i] ^= flip
					h, err := ParseHeader(c)
					if err != nil {
						continue // the marker: not taken as sealed at all
					}
					if _, err := b.Recv.Open(&s, c, h); err == nil {
						t.Fatalf("byte %d ^ %#x: opened", i, flip)
					}
				}
			}
			// Truncated anywhere: refused.
			for n := 0; n < len(d); n++ {
				c := append([]byte(nil), d[:n]...)
				if _, err := open(b.Recv, &s, c); err == nil {
					t.Fatalf("truncated to %d bytes: opened", n)
				}
			}
			// The untouched datagram still opens: no tamper moved the window.
			if got, err := open(b.Recv, &s, d); err != nil || !bytes.Equal(got, frame) {
				t.Fatalf("original after tampers: %v", err)
			}
		})
	}
}

func TestOpen_replay(t *testing.T) {
	a, b := pairKeys(t, AES256GCM)
	var s Scratch
	keep := func(ctr uint64) []byte {
		d, err := a.Send.Seal(&s, datagram(5, []byte("payload")), ctr)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d0 := keep(0)
	c0 := append([]byte(nil), d0...)
	if _, err := open(b.Recv, &s, d0); err != nil {
		t.Fatal(err)
	}
	if _, err := open(b.Recv, &s, c0); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed counter 0: %v, want ErrReplay", err)
	}
	// Reordered inside the window: taken once each.
	late := keep(ReplayWindow)
	lateCopy := append([]byte(nil), late...)
	newest := keep(2 * ReplayWindow)
	if _, err := open(b.Recv, &s, newest); err != nil {
		t.Fatal(err)
	}
	if _, err := open(b.Recv, &s, late); err != nil {
		t.Fatalf("counter %d, %d behind the newest: %v", ReplayWindow, ReplayWindow, err)
	}
	if _, err := open(b.Recv, &s, lateCopy); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay inside the window: %v", err)
	}
	// Older than the window: refused even if never seen.
	old := keep(ReplayWindow - 1)
	if _, err := open(b.Recv, &s, old); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter %d behind the newest: %v, want ErrReplay", ReplayWindow+1, err)
	}
	// A counter at the limit is refused by both sides.
	if _, err := a.Send.Seal(&s, datagram(5, nil), MaxCounter); !errors.Is(err, ErrExhausted) {
		t.Fatalf("sealing counter MaxCounter: %v", err)
	}
	forged := keep(MaxCounter - 1)
	binary.BigEndian.PutUint64(forged[VXLANLen+IDLen:], MaxCounter)
	if _, err := open(b.Recv, &s, forged); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter MaxCounter: %v, want ErrReplay", err)
	}
}

func TestSendKey_reserveExhausts(t *testing.T) {
	a, _ := pairKeys(t, ChaCha20Poly1305)
	a.Send.next.Store(MaxCounter - 3)
	if c, ok := a.Send.Reserve(3); !ok || c != MaxCounter-3 {
		t.Fatalf("Reserve(3) = %d, %v", c, ok)
	}
	if _, ok := a.Send.Reserve(1); ok {
		t.Fatal("Reserve past MaxCounter succeeded")
	}
	// Wrapping the 64-bit counter never hands out counter 0 again.
	a.Send.next.Store(^uint64(0) - 1)
	if _, ok := a.Send.Reserve(5); ok {
		t.Fatal("Reserve across the 64-bit wrap succeeded")
	}
}

func TestSeal_noRoom(t *testing.T) {
	a, _ := pairKeys(t, AES256GCM)
	var s Scratch
	b := datagram(1, []byte("x"))
	if _, err := a.Send.Seal(&s, b[:len(b):len(b)], 0); !errors.Is(err, ErrRoom) {
		t.Fatalf("no room for the tag: %v", err)
	}
	if _, err := a.Send.Seal(&s, b[:HeaderLen-1], 0); !errors.Is(err, ErrShort) {
		t.Fatalf("shorter than the header: %v", err)
	}
}

// TestOpen_concurrentLoops: receive loops sharing a key, given the same
// datagrams in any order, take each exactly once.
func TestOpen_concurrentLoops(t *testing.T) {
	a, b := pairKeys(t, AES256GCM)
	const n, loops = 2000, 4
	var s Scratch
	sealed := make([][]byte, n)
	for i := range sealed {
		sealed[i] = seal(t, a.Send, &s, datagram(9, []byte("datagram payload")))
	}
	var mu sync.Mutex
	taken := make(map[uint64]int)
	var wg sync.WaitGroup
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func(l int) {
			defer wg.Done()
			var s Scratch
			for j := range sealed {
				i := (j*7 + l*13) % n // every loop sees every datagram, in its own order
				c := append([]byte(nil), sealed[i]...)
				h, _ := ParseHeader(c)
				if _, err := b.Recv.Open(&s, c, h); err == nil {
					mu.Lock()
					taken[h.Counter]++
					mu.Unlock()
				} else if !errors.Is(err, ErrReplay) {
					t.Errorf("loop %d: %v", l, err)
				}
			}
		}(l)
	}
	wg.Wait()
	if len(taken) != n {
		t.Fatalf("%d of %d counters taken", len(taken), n)
	}
	for c, k := range taken {
		if k != 1 {
			t.Fatalf("counter %d taken %d times", c, k)
		}
	}
}

func TestSuite_parse(t *testing.T) {
	for _, s := range suites {
		got, err := ParseSuite(s.String())
		if err != nil || got != s {
			t.Fatalf("ParseSuite(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSuite("rot13"); err == nil {
		t.Fatal("ParseSuite(rot13) succeeded")
	}
	if Pick(true, true) != AES256GCM || Pick(true, false) != ChaCha20Poly1305 || Pick(false, false) != ChaCha20Poly1305 {
		t.Fatal("Pick")
	}
}
