package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestPackage_debInstallRunRemove builds the Debian package as make dist
// does (this machine's architecture), installs it with dpkg into a fresh
// root (a dpkg database of its own, maintainer scripts run with DPKG_ROOT:
// the machine's own files are never touched), checks the files, the unit
// (systemd-analyze verify) and the manual page, then runs the installed
// unit's ExecStart line by hand, with the unit's capabilities and nothing
// more, from settings the installed binary's cluster init wrote: the agent
// answers its API and attaches a container (a TUN device, its address and
// DNS in the container's namespace: every capability the unit names at
// work). dpkg -r removes the binary and the unit and keeps the settings;
// dpkg -P removes those too.
func TestPackage_debInstallRunRemove(t *testing.T) {
	needRoot(t)
	nfpm, err := exec.LookPath("nfpm")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		nfpm = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nfpm")
		if _, err := os.Stat(nfpm); err != nil {
			t.Skip("nfpm is not installed (make deps installs it)")
		}
	}
	for _, tool := range []string{"dpkg", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	l := newLab(t)
	dist := filepath.Join(l.dir, "dist")
	build := exec.Command("../scripts/dist.sh")
	build.Env = append(os.Environ(), "DIST_DIR="+dist, "DIST_ARCHES="+runtime.GOARCH, "DIST_WINDOWS=0", "NFPM="+nfpm)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/dist.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "vxnet_*_"+runtime.GOARCH+".deb"))
	tars, _ := filepath.Glob(filepath.Join(dist, "vxnet_*_linux_"+runtime.GOARCH+".tar.gz"))
	if len(debs) != 1 || len(tars) != 1 {
		t.Fatalf("dist holds %v %v: want one package and one tarball", debs, tars)
	}
	if out, err := exec.Command("tar", "-tzf", tars[0]).CombinedOutput(); err != nil || !strings.Contains(string(out), "/vxnet.service") || !strings.Contains(string(out), "/vxnet-cni") {
		t.Errorf("tarball: %v\n%s", err, out)
	}

	root := filepath.Join(l.dir, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	dpkg := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root", "--log=/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := dpkg("-i", debs[0])
	if !strings.Contains(out, "vxnet cluster init") {
		t.Errorf("the install says nothing of what to do next:\n%s", out)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{"usr/bin/vxnet", 0o755}, {"usr/lib/cni/vxnet", 0o755}, {"usr/lib/systemd/system/vxnet.service", 0o644}, {"usr/share/man/man1/vxnet.1.gz", 0o644}, {"etc/vxnet", 0o755 | os.ModeDir}} {
		fi, err := os.Stat(at(f.path))
		if err != nil || fi.Mode()&(os.ModeDir|os.ModePerm) != f.mode {
			t.Errorf("%s: %v %v, want mode %v", f.path, err, fi, f.mode)
		}
	}
	if v, err := exec.Command(at("usr/bin/vxnet"), "version").CombinedOutput(); err != nil || !strings.Contains(string(v), "vxnet 0.") {
		t.Errorf("installed vxnet version: %v\n%s", err, v)
	}
	if man, err := exec.Command("man", "-l", at("usr/share/man/man1/vxnet.1.gz")).CombinedOutput(); err != nil || !strings.Contains(string(man), "vxnet cluster join") {
		t.Errorf("man -l vxnet.1.gz: %v\n%.500s", err, man)
	}
	unitPath := at("usr/lib/systemd/system/vxnet.service")
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// The installed unit, running the installed binary; the rest of
		// systemd (targets) is the machine's.
		u, _ := os.ReadFile(unitPath)
		check := filepath.Join(l.dir, "verify", "vxnet.service")
		os.MkdirAll(filepath.Dir(check), 0o755)
		os.WriteFile(check, []byte(strings.Replace(string(u), "ExecStart=/usr/bin/vxnet ", "ExecStart="+at("usr/bin/vxnet")+" ", 1)), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", "--man=no", check).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze is not installed: the unit is not verified")
	}

	// The unit's ExecStart, its capabilities and NoNewPrivileges, by hand.
	unit, _ := os.ReadFile(unitPath)
	var execStart, caps []string
	nnp := false
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			caps = strings.Fields(v)
		}
		nnp = nnp || line == "NoNewPrivileges=yes"
	}
	if len(execStart) == 0 || execStart[0] != "/usr/bin/vxnet" || len(caps) == 0 || !nnp {
		t.Fatalf("unit: ExecStart %v, capabilities %v, NoNewPrivileges %v", execStart, caps, nnp)
	}
	c := l.clusterHosts("198.18.87", nil, false, "p1")
	h := c.hosts["p1"]
	etc := at("etc/vxnet")
	bin := at("usr/bin/vxnet")
	if out, err := exec.Command("ip", "netns", "exec", h.ns, bin, "cluster", "init", "--advertise-addr", h.addr, "--config-dir", etc, "--no-start").CombinedOutput(); err != nil {
		t.Fatalf("cluster init: %v\n%s", err, out)
	}
	argv := []string{bin}
	for _, a := range execStart[1:] {
		argv = append(argv, strings.Replace(a, "/etc/vxnet", etc, 1))
	}
	argv = append(argv, "--name", "p1", "--data-dir", h.data, "--api-socket", h.sock, "--docker-plugin", "off", "--dns-upstream", "none", "--profile", "fast")
	bounding := "-all"
	for _, cp := range caps {
		bounding += ",+" + strings.ToLower(strings.TrimPrefix(cp, "CAP_"))
	}
	c.startArgv("p1", append([]string{"ip", "netns", "exec", h.ns, "setpriv", "--bounding-set", bounding, "--no-new-privs", "--"}, argv...))
	// The agent holds the unit's capabilities and no other (setpriv
	// execs it: same pid).
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	var eff uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	want := map[string]uint{"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_NET_RAW": 13, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_PTRACE": 19}
	var mask uint64
	for _, cp := range caps {
		bit, ok := want[cp]
		if !ok {
			t.Errorf("the unit names %s, which this test does not know", cp)
		}
		mask |= 1 << bit
	}
	if eff != mask {
		t.Errorf("the agent's effective capabilities %#x, want the unit's %#x", eff, mask)
	}
	c.cli("p1", "network", "create", "--subnet", "10.87.0.0/24", "pkg")
	ctr := l.netns("pc1")
	c.cli("p1", "endpoint", "create", "--network", "pkg", "--name", "web", "--netns", ctr)
	if out := l.in(ctr, "ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.87.0.") {
		t.Errorf("the container's eth0:\n%s", out)
	}
	if out := l.in(ctr, "dig", "+short", "+time=2", "+tries=3", "@127.0.0.11", "web.pkg"); !strings.Contains(out, "10.87.0.") {
		t.Errorf("DNS in the container: %q", out)
	}

	// Remove keeps the settings; purge removes them.
	dpkg("-r", "vxnet")
	for _, gone := range []string{"usr/bin/vxnet", "usr/lib/systemd/system/vxnet.service", "usr/lib/cni/vxnet"} {
		if _, err := os.Stat(at(gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after dpkg -r: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(etc, "config.json")); err != nil {
		t.Errorf("dpkg -r removed the settings: %v", err)
	}
	dpkg("-P", "vxnet")
	if _, err := os.Stat(etc); !os.IsNotExist(err) {
		t.Errorf("%s is still there after dpkg -P: %v", etc, err)
	}
}
