package dns

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSweepNetnsResolvConfs: vxnet's resolv.conf of a namespace that is
// gone is removed with its directory; one of a namespace that is there,
// one vxnet did not write, and a directory holding more stay.
func TestSweepNetnsResolvConfs(t *testing.T) {
	etc, run := t.TempDir(), t.TempDir()
	write := func(ns, name string, b []byte) {
		os.MkdirAll(filepath.Join(etc, ns), 0o755)
		if err := os.WriteFile(filepath.Join(etc, ns, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ours := ContainerResolvConf(nil)
	write("gone", "resolv.conf", ours)
	write("alive", "resolv.conf", ours)
	write("theirs", "resolv.conf", []byte("nameserver 192.0.2.1\n"))
	write("more", "resolv.conf", ours)
	write("more", "hosts", []byte("127.0.0.1 localhost\n"))
	os.WriteFile(filepath.Join(run, "alive"), nil, 0o644)

	cleaned, err := SweepNetnsResolvConfs(etc, run)
	slices.Sort(cleaned)
	if err != nil || !slices.Equal(cleaned, []string{"gone", "more"}) {
		t.Fatalf("cleaned %v, %v; want gone and more", cleaned, err)
	}
	for path, want := range map[string]bool{
		"gone": false, "alive/resolv.conf": true, "theirs/resolv.conf": true, "more/resolv.conf": false, "more/hosts": true,
	} {
		if _, err := os.Stat(filepath.Join(etc, path)); (err == nil) != want {
			t.Errorf("%s: there %v, want %v", path, err == nil, want)
		}
	}
	if c, err := SweepNetnsResolvConfs(filepath.Join(etc, "none"), run); err != nil || c != nil {
		t.Errorf("no /etc/netns: %v %v", c, err)
	}
}

// TestNetnsResolvConfPath: the file of a namespace is in its directory
// under NetnsConfDir, the directory the agent sweeps.
func TestNetnsResolvConfPath(t *testing.T) {
	if got := filepath.Dir(filepath.Dir(NetnsResolvConfPath("c1"))); got != NetnsConfDir {
		t.Errorf("NetnsResolvConfPath(c1) is under %s, not %s", got, NetnsConfDir)
	}
}
