package lab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestState_saveLoad_roundTrip(t *testing.T) {
	dir := t.TempDir()
	s := newState(Config{ID: "rt", Hosts: 2, Dir: dir}.withDefaults())
	s.Hosts[1].Agent = Proc{PID: 1234, Start: 5678}
	s.Outside.DNS = Proc{PID: 1300, Start: 6000}
	s.Network = "demo"
	s.Containers = []ContainerState{{Name: "h1c1", Host: "h1", Netns: "rt-h1-c1",
		Addr: netip.MustParseAddr("10.0.0.2"), Echo: Proc{PID: 99, Start: 1}}}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("loaded\n%+v\nwant\n%+v", got, s)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if ns := got.Namespaces(); ns[0] != "rt-h1-c1" || ns[len(ns)-1] != "rt-bridge" {
		t.Errorf("Namespaces() = %v: want containers first, bridge last", ns)
	}
}

// A state file written before labs had an outside still loads, and
// lists no outside namespace.
func TestLoadState_withoutOutside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"id": "old", "bridgeNetns": "old-bridge",
		"hosts": [{"name": "h1", "netns": "old-h1", "addr": "198.18.3.1"}]}`), 0o600)
	s, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ns := s.Namespaces(); !reflect.DeepEqual(ns, []string{"old-h1", "old-bridge"}) || s.Outside.Addr.IsValid() {
		t.Errorf("Namespaces() = %v, outside %+v", ns, s.Outside)
	}
	if argv := agentArgv(s, &s.Hosts[0], nil); slices.Contains(argv, "--dns-upstream") {
		t.Errorf("an agent of a lab without an outside is given an upstream: %v", argv)
	}
}

func TestLoadState_missingOrBad(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadState(dir); !errors.Is(err, ErrNotUp) {
		t.Errorf("no file: %v, want ErrNotUp", err)
	}
	os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"id": "../etc"}`), 0o600)
	if _, err := LoadState(dir); err == nil || errors.Is(err, ErrNotUp) {
		t.Errorf("bad id: %v, want a validation error", err)
	}
	os.WriteFile(filepath.Join(dir, StateFile), []byte(`{`), 0o600)
	if _, err := LoadState(dir); err == nil || errors.Is(err, ErrNotUp) {
		t.Errorf("truncated: %v, want a parse error", err)
	}
}

func TestRemoveLabDir_onlyWhatTheLabMade(t *testing.T) {
	dir := t.TempDir()
	lab := filepath.Join(dir, "l")
	for _, p := range []string{"h1/data/x", "h2/agent.log", "containers/h1c1-echo.log", "outside/dnsmasq.log", StateFile, gossipKeyName} {
		os.MkdirAll(filepath.Dir(filepath.Join(lab, p)), 0o700)
		os.WriteFile(filepath.Join(lab, p), nil, 0o600)
	}
	if err := removeLabDir(lab); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lab); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir still there: %v", err)
	}
	// A user's file in --dir is kept, and so is the directory.
	os.MkdirAll(filepath.Join(lab, "h1"), 0o700)
	os.WriteFile(filepath.Join(lab, "notes.txt"), []byte("mine"), 0o600)
	if err := removeLabDir(lab); err == nil {
		t.Error("want an error saying the directory was not removed")
	}
	if _, err := os.Stat(filepath.Join(lab, "notes.txt")); err != nil {
		t.Errorf("user's file removed: %v", err)
	}
	if err := removeLabDir(filepath.Join(dir, "never")); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}

// TestRenderStatus_showsSockets: lab status names each agent's API socket,
// which the CLI's --socket takes.
func TestRenderStatus_showsSockets(t *testing.T) {
	var b strings.Builder
	RenderStatus(&b, []HostStatus{{Name: "h1", Socket: "/run/vxnet-lab/x/h1/api.sock", Alive: true, PID: 7, Members: 3, Endpoints: 2, Local: 1}})
	if !strings.Contains(b.String(), "API SOCKET") || !strings.Contains(b.String(), "/run/vxnet-lab/x/h1/api.sock") {
		t.Errorf("status table:\n%s", b.String())
	}
}
