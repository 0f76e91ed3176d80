// Package bindretry retries a bind whose address is in use.
//
// A restarted agent may find its addresses still held: by the process it
// replaces, still shutting down (a graceful leave, requests finishing), or
// exiting after kill -9. Each bind (gossip TCP and UDP, VXLAN, the API
// socket, the metrics and profiler servers, DNS in each container's
// namespace) is retried while its address is in use, for the agent's
// --bind-timeout, with one log line when the wait starts; then the agent
// fails with an error that says so.
package bindretry

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ErrInUse says an address is held by another process.
var ErrInUse = errors.New("address in use")

// InUse reports whether err is a bind failing because another socket
// holds the address. Some libraries (memberlist) keep only the message.
func InUse(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInUse) || errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	var errno syscall.Errno
	if runtime.GOOS == "windows" && errors.As(err, &errno) && errno == 10048 { // WSAEADDRINUSE
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "Only one usage of each socket address")
}

// Retry calls bind until it succeeds, fails otherwise than with an
// address in use, or timeout has passed (a timeout of 0 or less: no
// retry). what names the socket in the log and the error, addr its
// address.
func Retry[T any](log *slog.Logger, what, addr string, timeout time.Duration, bind func() (T, error)) (T, error) {
	start := time.Now()
	wait, waited := 50*time.Millisecond, false
	for {
		v, err := bind()
		if err == nil {
			if waited {
				log.Info(what+": bound once the address was free", "listenAddr", addr)
			}
			return v, nil
		}
		if !InUse(err) {
			return v, err
		}
		if time.Since(start) >= timeout {
			if timeout <= 0 {
				return v, err
			}
			return v, fmt.Errorf("%w (still in use after %v: another process holds %s; is another vxnet agent running? --bind-timeout sets the wait)", err, timeout, addr)
		}
		if !waited {
			log.Warn(what+": address in use, perhaps by an agent still shutting down; retrying", "listenAddr", addr, "timeout", timeout.String(), "error", err)
			waited = true
		}
		time.Sleep(min(wait, timeout-time.Since(start)))
		wait = min(2*wait, time.Second)
	}
}
