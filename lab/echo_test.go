package lab

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestEcho_roundTripOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- ServeEcho(ctx, ln) }()
	for range 3 {
		if _, err := EchoRoundTrip(t.Context(), ln.Addr().String(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("ServeEcho after cancel: %v", err)
	}
	if _, err := EchoRoundTrip(t.Context(), ln.Addr().String(), time.Second); err == nil {
		t.Error("round trip to a stopped server succeeded")
	}
}

// A server that answers something else fails the check.
func TestEchoRoundTrip_wrongAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.ReadAll(c)
		io.WriteString(c, "something else\n")
		c.Close()
	}()
	_, err = EchoRoundTrip(t.Context(), ln.Addr().String(), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("err = %v, want a mismatch", err)
	}
}

// A server that never answers fails the check within the timeout.
func TestEchoRoundTrip_timeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			hold <- c
		}
	}()
	start := time.Now()
	if _, err := EchoRoundTrip(t.Context(), ln.Addr().String(), 200*time.Millisecond); err == nil {
		t.Error("silent server passed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v with a 200ms timeout", d)
	}
	select {
	case c := <-hold:
		c.Close()
	default:
	}
}
