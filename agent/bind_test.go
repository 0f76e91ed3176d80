package agent

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/internal/testutil"
)

// TestServeAPI_waitsForTheRunningAgent: a second agent on the same API
// socket waits while the first answers on it, takes it once the first has
// stopped, and the first's stop does not remove the second's socket. A
// socket file nobody answers on is replaced at once.
func TestServeAPI_waitsForTheRunningAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	var logs testutil.SyncBuffer
	first := &Agent{cfg: config.Config{BindTimeout: time.Minute}, log: slog.New(slog.DiscardHandler)}
	second := &Agent{cfg: config.Config{BindTimeout: time.Minute}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	stop1, err := first.serveAPI(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		stop func()
		err  error
	}
	done := make(chan result, 1)
	go func() {
		stop, err := second.serveAPI(path)
		done <- result{stop, err}
	}()
	testutil.WaitFor(t, "the second agent to wait for the socket", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "api-socket: address in use")
	})
	stop1()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the second agent did not take the socket")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !answers(path) {
		t.Error("the second agent's socket does not answer: the first removed it on stop")
	}
	r.stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}

	// A stale socket file: replaced at once.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	start := time.Now()
	stop3, err := first.serveAPI(path)
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("over a stale socket: %v after %v", err, time.Since(start))
	}
	stop3()
}

// answers reports whether something listens on the unix socket at path.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
