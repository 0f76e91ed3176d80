package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/tun"
)

// usoSupported opens a TUN device in a namespace of its own and asks it.
func usoSupported(t *testing.T, l *lab) bool {
	t.Helper()
	dev, err := tun.Create(tun.Config{Name: "probe0", Netns: l.netns("probe")})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	raw, err := tun.NewRaw(dev)
	if err != nil {
		t.Fatal(err)
	}
	return raw.USO()
}

// TestDataplane_udpBurst_datagramsKeepTheirBoundaries: bursts of
// equal-sized UDP datagrams leave the sending host in one GSO send, reach
// the other host as one GRO train and go into the container as one USO
// super-packet, which the container's kernel cuts back into datagrams.
// Every datagram must come out whole: its own length, its own bytes, once.
// Bursts go on until the receiving switch has merged some (its Coalesced
// counter), so the test fails if that path never runs; over IPv4 and IPv6.
func TestDataplane_udpBurst_datagramsKeepTheirBoundaries(t *testing.T) {
	l := newLab(t)
	if !usoSupported(t, l) {
		t.Skip("this kernel's TUN devices take no UDP super-packets (USO, Linux 6.2): the switch sends datagrams one by one")
	}
	c1, c2, _, a2 := l.twoHosts("198.18.6")
	for _, dst := range []string{"10.0.9.3", "fd00:9::3"} {
		addr := netip.MustParseAddr(dst)
		var rx, tx *net.UDPConn
		inNetns(t, c2, func() {
			var err error
			if rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0))); err != nil {
				t.Fatal(err)
			}
		})
		defer rx.Close()
		inNetns(t, c1, func() {
			var err error
			if tx, err = net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr)); err != nil {
				t.Fatal(err)
			}
		})
		defer tx.Close()

		const size, burst = 300, 48
		seen := map[uint32]bool{}
		buf := make([]byte, 2048)
		csumErrors := udpInCsumErrors(t, l, c2)
		deadline := time.Now().Add(20 * time.Second)
		var id uint32
		bursts := 0
		for merged := false; !merged; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d bursts of %d datagrams, and the receiving switch merged none", dst, bursts, burst)
			}
			bursts++
			before := a2.stats(t).Coalesced
			first := id
			for range burst {
				tx.Write(datagram(id, size))
				id++
			}
			// Take this burst's datagrams until the line goes quiet.
			got := 0
			for got < burst {
				rx.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := rx.Read(buf)
				if err != nil {
					break // lost ones are counted below
				}
				d := buf[:n]
				if n != size || !bytes.Equal(d, datagram(binary.BigEndian.Uint32(d), size)) {
					t.Fatalf("%s: a datagram of %d bytes that is not one the sender sent (want %d bytes)", dst, n, size)
				}
				k := binary.BigEndian.Uint32(d)
				if k < first || k >= id || seen[k] {
					t.Fatalf("%s: datagram %d arrived twice or out of its burst", dst, k)
				}
				seen[k] = true
				got++
			}
			// A burst some of which went in as a super-packet must arrive
			// whole: the loss of a merged run would show here.
			if merged = a2.stats(t).Coalesced > before; merged && got != burst {
				t.Errorf("%s: the burst the switch merged lost %d of %d datagrams", dst, burst-got, burst)
			}
		}
		if e := udpInCsumErrors(t, l, c2); e != csumErrors {
			t.Errorf("%s: the receiving container counted %d UDP checksum errors", dst, e-csumErrors)
		}
		// Loss is UDP's right, but not most of it on an idle lab.
		if len(seen) < int(id)*9/10 {
			t.Errorf("%s: %d of %d datagrams arrived", dst, len(seen), id)
		}
		t.Logf("%s: %d bursts, %d of %d datagrams arrived whole", dst, bursts, len(seen), id)
	}
}

// udpInCsumErrors reads the UDP checksum-error counters (IPv4 and IPv6
// together) in namespace ns, failing the test if either is missing.
func udpInCsumErrors(t *testing.T, l *lab, ns string) int {
	t.Helper()
	out := l.in(ns, "nstat", "-asz", "UdpInCsumErrors", "Udp6InCsumErrors")
	total, found := 0, 0
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "UdpInCsumErrors" || f[0] == "Udp6InCsumErrors") {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("nstat: %q: %v", line, err)
			}
			total += n
			found++
		}
	}
	if found != 2 {
		t.Fatalf("nstat shows %d of the 2 UDP checksum counters:\n%s", found, out)
	}
	return total
}

// datagram is datagram number id: the id, then bytes that depend on it.
func datagram(id uint32, size int) []byte {
	d := make([]byte, size)
	binary.BigEndian.PutUint32(d, id)
	for i := 4; i < size; i++ {
		d[i] = byte(id*7 + uint32(i))
	}
	return d
}
