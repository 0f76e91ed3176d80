package lab

import (
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestEndpointCreate_namespaceNotTheLabs: a chaos workload's container
// whose namespace name is taken already fails as an operation, and the lab
// neither deletes that namespace nor keeps it in its state; a namespace the
// lab made whose endpoint failed is deleted.
func TestEndpointCreate_namespaceNotTheLabs(t *testing.T) {
	for _, exists := range []bool{true, false} {
		addFails := netnsAddFails("Cannot create namespace file: File exists")
		r := &recorder{answer: func(argv []string) (string, error) {
			if exists {
				if out, err := addFails(argv); err != nil {
					return out, err
				}
			}
			if slices.Contains(argv, "endpoint") {
				return "error: network n1 not found", &CmdError{Argv: argv, Output: "error: network n1 not found", Err: errors.New("exit status 1")}
			}
			return "", nil
		}}
		cfg := Config{ID: "tce", Hosts: 1, Dir: t.TempDir(), Out: io.Discard}.withDefaults()
		l := &Lab{cfg: cfg, run: r, st: newState(cfg)}
		c := &campaign{cfg: ChaosConfig{Lab: cfg}, l: l, out: io.Discard, start: time.Now(),
			health: map[string]*hostHealth{}, netLocks: map[string]*sync.Mutex{}}
		c.endpointCreate(t.Context(), OpRecord{Host: "h1", Network: "n1", Endpoint: "e1"})
		if deleted := r.ran("netns", "del"); deleted == exists {
			t.Errorf("namespace there before: %v; deleted: %v; commands %v", exists, deleted, r.cmds)
		}
		if cs := l.State().Containers; len(cs) != 0 {
			t.Errorf("namespace there before: %v; the state keeps %v", exists, cs)
		}
		if ops := c.hist.ops; len(ops) != 1 || ops[0].Outcome != OutcomeFail {
			t.Errorf("namespace there before: %v; recorded %+v, want one failed operation", exists, ops)
		}
	}
}
