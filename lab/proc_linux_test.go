package lab

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestProc_identifyAliveStop: a child is identified, seen alive, stopped by
// SIGTERM, and then seen gone; a Proc whose start time differs (a reused
// PID) is never alive.
func TestProc_identifyAliveStop(t *testing.T) {
	self, err := identify(os.Getpid())
	if err != nil || !alive(self) {
		t.Fatalf("identify(self) = %+v, %v", self, err)
	}
	if alive(Proc{PID: self.PID, Start: self.Start + 1}) {
		t.Error("a different start time counts as alive")
	}
	p, exited, err := startProc(exec.Command("sleep", "60"))
	if err != nil {
		t.Skipf("no sleep command: %v", err)
	}
	if !alive(p) {
		t.Fatal("child not alive")
	}
	killed, err := stopProcs(t.Context(), []Proc{p}, 5*time.Second)
	if err != nil || len(killed) != 0 {
		t.Errorf("stopProcs = %v, %v; want stopped by SIGTERM", killed, err)
	}
	<-exited
	if alive(p) {
		t.Error("stopped child still alive")
	}
}
