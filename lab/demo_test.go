package lab

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Without dnsmasq the demo refuses to start, and says what it is for and
// how to install it.
func TestDemoTools_namesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"ping", "dig", "nft"} {
		if err := os.WriteFile(filepath.Join(dir, cmd), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	err := demoTools()
	if err == nil || !strings.Contains(err.Error(), "dnsmasq (the outside's DNS server): install dnsmasq (make deps)") {
		t.Errorf("demoTools() = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "dnsmasq"), []byte("#!/bin/sh\n"), 0o755)
	if err := demoTools(); err != nil {
		t.Errorf("with every tool: %v", err)
	}
}

// A lab built before the outside existed cannot run the demo, and says so.
func TestDemoReady_needsAnOutside(t *testing.T) {
	l := &Lab{cfg: Config{}.withDefaults(), st: &State{ID: "old"}}
	if err := l.demoReady(); err == nil || !strings.Contains(err.Error(), "no outside namespace") {
		t.Errorf("demoReady() = %v", err)
	}
	l.st = newState(Config{ID: "new", Dir: "/run/vxnet-lab/new"}.withDefaults())
	if err := l.demoReady(); err != nil {
		t.Errorf("a new lab: %v", err)
	}
}

// The outside's DNS server listens on the outside's address only and
// answers the outside's name with it, and nothing else.
func TestDnsmasqArgv(t *testing.T) {
	o := OutsideState{Netns: "l-outside", Addr: netip.MustParseAddr("198.18.7.250")}
	got := strings.Join(dnsmasqArgv(o, "/run/vxnet-lab/l/outside/dnsmasq.pid"), " ")
	for _, want := range []string{"ip netns exec l-outside dnsmasq --no-daemon", "--no-resolv", "--no-hosts",
		"--listen-address=198.18.7.250", "--bind-interfaces", "--local=/outside.test/", "--address=/outside.test/198.18.7.250",
		"--pid-file=/run/vxnet-lab/l/outside/dnsmasq.pid"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s\nlacks %s", got, want)
		}
	}
}

// TestAddContainer_namespaceNotTheLabs: a namespace already there under
// the name the lab would give a container is not the lab's: the error
// says so and the state does not record it (so Down leaves it alone).
func TestAddContainer_namespaceNotTheLabs(t *testing.T) {
	r := &recorder{answer: netnsAddFails("Cannot create namespace file: File exists")}
	cfg := Config{ID: "tac", Hosts: 1, Dir: t.TempDir(), Out: io.Discard}.withDefaults()
	l := &Lab{cfg: cfg, run: r, st: newState(cfg)}
	_, err := l.AddContainer(t.Context(), "demo", "h1", "h1c1")
	if err == nil || !strings.Contains(err.Error(), "namespace tac-h1-c1 exists already, and not as the lab's") {
		t.Errorf("AddContainer = %v", err)
	}
	if cs := l.State().Containers; len(cs) != 0 {
		t.Errorf("the state records %v", cs)
	}
	for _, c := range r.cmds {
		if slices.Contains(c, "endpoint") {
			t.Errorf("went on to %v", c)
		}
	}
}

// TestAddContainer_otherFailureKeepsTheRecord: a namespace the lab made
// whose loopback failed to come up stays in the state, so Down deletes it.
func TestAddContainer_otherFailureKeepsTheRecord(t *testing.T) {
	r := &recorder{answer: func(argv []string) (string, error) {
		if slices.Contains(argv, "lo") {
			return "RTNETLINK answers: Operation not permitted", &CmdError{Argv: argv, Output: "Operation not permitted", Err: errors.New("exit status 2")}
		}
		return "", nil
	}}
	cfg := Config{ID: "tak", Hosts: 1, Dir: t.TempDir(), Out: io.Discard}.withDefaults()
	l := &Lab{cfg: cfg, run: r, st: newState(cfg)}
	if _, err := l.AddContainer(t.Context(), "demo", "h1", "h1c1"); err == nil {
		t.Fatal("no error")
	}
	if cs := l.State().Containers; len(cs) != 1 || cs[0].Netns != "tak-h1-c1" {
		t.Errorf("the state holds %v, want the container whose namespace the lab made", cs)
	}
}

// TestAddContainer_skipsLeftoverNames: a container namespace an earlier
// demo could not delete keeps its name in the state, and new containers
// take the numbers no container in the state has.
func TestAddContainer_skipsLeftoverNames(t *testing.T) {
	r := &recorder{answer: func(argv []string) (string, error) { return "", nil }}
	cfg := Config{ID: "tal", Hosts: 1, Dir: t.TempDir(), Out: io.Discard}.withDefaults()
	cfg.ReadyTimeout = time.Millisecond // the fake makes no endpoint: fail at once
	l := &Lab{cfg: cfg, run: r, st: newState(cfg)}
	l.st.Containers = []ContainerState{{Name: "old", Host: "h1", Netns: "tal-h1-c2"}}
	var got []string
	for _, name := range []string{"a", "b"} {
		c, _ := l.AddContainer(t.Context(), "demo", "h1", name)
		got = append(got, c.Netns)
	}
	if want := []string{"tal-h1-c1", "tal-h1-c3"}; !slices.Equal(got, want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}
}

// TestAddContainer_addFailedNotRecorded: when `ip netns add` fails (here
// refused; a cancelled command alike), the namespace is not the lab's:
// the state does not keep it and nothing deletes it.
func TestAddContainer_addFailedNotRecorded(t *testing.T) {
	r := &recorder{answer: netnsAddFails("mount --make-shared /run/netns failed: Operation not permitted")}
	cfg := Config{ID: "taf", Hosts: 1, Dir: t.TempDir(), Out: io.Discard}.withDefaults()
	l := &Lab{cfg: cfg, run: r, st: newState(cfg)}
	if _, err := l.AddContainer(t.Context(), "demo", "h1", "h1c1"); err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("AddContainer = %v", err)
	}
	if cs := l.State().Containers; len(cs) != 0 {
		t.Errorf("the state records %v", cs)
	}
	if r.ran("netns", "del") {
		t.Errorf("deleted a namespace it did not make: %v", r.cmds)
	}
}

// netnsAddFails answers `ip netns add` with a failure printing out, and
// every other command with success.
func netnsAddFails(out string) func(argv []string) (string, error) {
	return func(argv []string) (string, error) {
		if isIP(argv, "netns", "add") {
			return out, &CmdError{Argv: argv, Output: out, Err: errors.New("exit status 1")}
		}
		return "", nil
	}
}

// isIP reports whether argv is `ip OBJECT VERB ...`.
func isIP(argv []string, object, verb string) bool {
	return len(argv) > 2 && argv[0] == "ip" && argv[1] == object && argv[2] == verb
}

// ran reports whether r ran `ip OBJECT VERB ...`.
func (r *recorder) ran(object, verb string) bool {
	return slices.ContainsFunc(r.cmds, func(argv []string) bool { return isIP(argv, object, verb) })
}
