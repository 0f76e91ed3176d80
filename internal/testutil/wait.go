// Package testutil has helpers shared by the tests of several packages.
package testutil

import (
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition.
const pollEvery = 10 * time.Millisecond

// WaitFor checks cond until it holds, failing the test with what after
// timeout. Tests wait on conditions, never on fixed sleeps.
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	if !Eventually(timeout, cond) {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Eventually checks cond until it holds, for at most timeout, and reports
// whether it came to hold: WaitFor for cleanups, which go on after a
// failure.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}
