package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeDHCPServer answers on a FrameLink as a DHCP server would: offers
// 192.0.2.50/24, then acknowledges a request for it (or NAKs, when nak).
type fakeDHCPServer struct {
	h        func([]byte)
	nak      bool
	silent   int // requests to ignore first
	seen     []byte
	released bool
}

func (s *fakeDHCPServer) SetDHCPHandler(h func([]byte)) { s.h = h }

func (s *fakeDHCPServer) WriteFrame(f []byte) error {
	if len(f) < 14+20+8+bootpLen+4 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || binary.BigEndian.Uint16(f[14+20+2:]) != 67 {
		return nil
	}
	req := f[14+20+8:]
	var typ byte
	for o := req[bootpLen+4:]; len(o) >= 2 && o[0] != optEnd; o = o[2+int(o[1]):] {
		if o[0] == optMsgType {
			typ = o[2]
		}
	}
	s.seen = append(s.seen, typ)
	if s.silent > 0 {
		s.silent--
		return nil
	}
	reply := func(t byte) {
		b := make([]byte, bootpLen+4)
		b[0], b[1], b[2] = 2, 1, 6
		copy(b[4:8], req[4:8])
		copy(b[28:34], req[28:34])
		copy(b[16:20], []byte{192, 0, 2, 50})
		binary.BigEndian.PutUint32(b[bootpLen:], dhcpMagic)
		b = append(b, optMsgType, 1, t, optServerID, 4, 192, 0, 2, 1, optMask, 4, 255, 255, 255, 0,
			optRouter, 4, 192, 0, 2, 254, optLease, 4, 0, 0, 0x0e, 0x10, optEnd)
		go s.h(b) // as the uplink's reader would, on its own goroutine
	}
	switch typ {
	case dhcpDiscover:
		reply(dhcpOffer)
	case dhcpRequest:
		if s.nak {
			reply(dhcpNak)
		} else {
			reply(dhcpAck)
		}
	case dhcpRelease:
		s.released = true
	}
	return nil
}

var testMAC = [6]byte{2, 0x42, 0, 0, 0, 7}

func TestDHCP_acquireRenewRelease(t *testing.T) {
	srv := &fakeDHCPServer{silent: 1} // the first DISCOVER is lost
	c := NewClients(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.Acquire(ctx, testMAC, "web")
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr != netip.MustParsePrefix("192.0.2.50/24") || l.Router != netip.MustParseAddr("192.0.2.254") ||
		l.Server != netip.MustParseAddr("192.0.2.1") || l.Time != time.Hour {
		t.Errorf("lease %+v", l)
	}
	if string(srv.seen) != string([]byte{dhcpDiscover, dhcpDiscover, dhcpRequest}) {
		t.Errorf("messages %v, want DISCOVER, DISCOVER (retried), REQUEST", srv.seen)
	}
	if _, err := c.Renew(ctx, testMAC, "web", l); err != nil {
		t.Errorf("renew: %v", err)
	}
	if err := c.Release(testMAC, l); err != nil || !srv.released {
		t.Errorf("release: %v, seen by the server: %v", err, srv.released)
	}
}

func TestDHCP_nakAndTimeout(t *testing.T) {
	c := NewClients(&fakeDHCPServer{nak: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Acquire(ctx, testMAC, ""); err == nil || !strings.Contains(err.Error(), "NAK") {
		t.Errorf("NAK: %v", err)
	}
	c = NewClients(&fakeDHCPServer{silent: 1 << 30})
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := c.Acquire(short, testMAC, ""); err == nil || !strings.Contains(err.Error(), "no offer for 02:42:00:00:00:07") {
		t.Errorf("no server: %v", err)
	}
}

// TestKeep: a lease renewed stays; a server that does not answer while
// the lease is current is tried again later; a lease refused or expired
// with no new one is lost; a server offering another address moves it
// (and gets that address back).
func TestKeep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease := Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: netip.MustParseAddr("192.0.2.1"), Time: time.Hour, Got: time.Now().Add(-40 * time.Minute)}
	got, err := NewClients(&fakeDHCPServer{}).Keep(ctx, testMAC, "web", lease)
	if err != nil || got.Addr != lease.Addr || !got.Got.After(lease.Got) {
		t.Errorf("renewed: %+v, %v", got, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	got, err = NewClients(&fakeDHCPServer{silent: 1 << 30}).Keep(short, testMAC, "web", lease)
	if err == nil || errors.Is(err, ErrLost) || got != lease {
		t.Errorf("no answer while current: %+v, %v; want the lease kept and a retry", got, err)
	}
	if _, err = NewClients(&fakeDHCPServer{nak: true}).Keep(ctx, testMAC, "web", lease); !errors.Is(err, ErrLost) {
		t.Errorf("refused, and no new lease: %v, want ErrLost", err)
	}
	moved := lease
	moved.Addr = netip.MustParsePrefix("192.0.2.77/24")
	srv := &fakeDHCPServer{}
	if _, err = NewClients(srv).Keep(ctx, testMAC, "web", moved); !errors.Is(err, ErrMoved) || !srv.released {
		t.Errorf("another address offered: %v (released %v), want ErrMoved and the offer given back", err, srv.released)
	}
}

// FuzzParseDHCPReply: whatever arrives on port 68, no panic.
func FuzzParseDHCPReply(f *testing.F) {
	b := make([]byte, bootpLen+4)
	b[0] = 2
	binary.BigEndian.PutUint32(b[bootpLen:], dhcpMagic)
	f.Add(append(b, optMsgType, 1, dhcpAck, optMask, 4, 255, 255, 0, 0, optEnd))
	f.Add(append(b, optMsgType, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseDHCPReply(b, [6]byte{}, 0)
	})
}
