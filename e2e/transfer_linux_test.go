package e2e

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"
)

// transfer sends size pseudo-random bytes over TCP from a socket in
// clientNS to a listener on serverAddr in serverNS, and fails unless the
// server received exactly those bytes (SHA-256 on both sides).
func transfer(t *testing.T, clientNS, serverNS string, serverAddr netip.Addr, size int64) {
	t.Helper()
	if n := transferFrom(t, clientNS, serverNS, serverAddr, io.LimitReader(rand.NewChaCha8([32]byte{byte(size), 7}), size)); n != size {
		t.Fatalf("sent %d bytes, want %d", n, size)
	}
}

// transferFrom sends what src yields over one TCP connection, as transfer
// does, checks it arrived whole, and returns how many bytes it was.
func transferFrom(t *testing.T, clientNS, serverNS string, serverAddr netip.Addr, src io.Reader) int64 {
	t.Helper()
	var ln net.Listener
	inNetns(t, serverNS, func() {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(serverAddr, 0).String())
		if err != nil {
			t.Fatalf("listen in %s: %v", serverNS, err)
		}
	})
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		got <- r
	}()

	var conn net.Conn
	inNetns(t, clientNS, func() {
		var err error
		conn, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatalf("dial %s from %s: %v", ln.Addr(), clientNS, err)
		}
	})
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(conn, h), src)
	if err != nil {
		t.Fatalf("send after %d bytes: %v", n, err)
	}
	conn.(*net.TCPConn).CloseWrite()
	r := <-got
	if r.err != nil {
		t.Fatalf("receive after %d bytes: %v", r.n, r.err)
	}
	if r.n != n || !bytes.Equal(r.sum[:], h.Sum(nil)) {
		t.Fatalf("%s -> %s: received %d bytes with sha256 %x, sent %d with %x", clientNS, serverAddr, r.n, r.sum, n, h.Sum(nil))
	}
	return n
}
