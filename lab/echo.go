package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Echo server limits: a probe sends one short line, so anything bigger or
// slower is not a probe.
const (
	echoMaxBytes = 4096
	echoIdle     = 10 * time.Second
	// EchoReady is the line `vxnet lab tcp-echo --listen` prints once it
	// listens; the lab waits for it.
	EchoReady = "listening on"
)

// ServeEcho echoes what each connection sends (up to 4 KiB, 10 s idle)
// until ctx ends, then closes ln and returns once every connection is done.
func ServeEcho(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(echoIdle))
			io.Copy(c, io.LimitReader(c, echoMaxBytes))
		})
	}
}

// EchoRoundTrip connects to addr (host:port; a name is resolved by the
// system resolver), sends a random line, half-closes, and checks that the
// same line comes back, all within timeout. It returns the round-trip time.
func EchoRoundTrip(ctx context.Context, addr string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nonce := make([]byte, 8)
	rand.Read(nonce)
	msg := []byte("vxnet-lab " + hex.EncodeToString(nonce) + "\n")
	start := time.Now()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(msg); err != nil {
		return 0, fmt.Errorf("write to %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	got, err := io.ReadAll(io.LimitReader(c, echoMaxBytes))
	if err != nil {
		return 0, fmt.Errorf("read from %s: %w", addr, err)
	}
	if !bytes.Equal(got, msg) {
		return 0, errors.New("echo from " + addr + " differs from what was sent")
	}
	return time.Since(start), nil
}
