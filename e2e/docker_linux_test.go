package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

const (
	dockerdBin = "/usr/sbin/dockerd"
	// Debian's client, of the same version as its dockerd; another docker
	// may come first in PATH.
	dockerBin  = "/usr/bin/docker"
	busyboxBin = "/bin/busybox"
	// testImage is made from busybox-static and imported into every test
	// dockerd: the tests reach no registry.
	testImage = "vxnet-test/busybox"
	// dockerTimeout bounds one docker command: a hung command would
	// otherwise run into the package's timeout, which skips all cleanup.
	dockerTimeout = 2 * time.Minute
)

// needDocker skips the test when Docker or busybox-static is missing.
func needDocker(t *testing.T) {
	t.Helper()
	for _, f := range []struct{ path, pkg string }{
		{dockerdBin, "docker.io"}, {dockerBin, "docker.io"}, {busyboxBin, "busybox-static"},
		{"/usr/bin/nsenter", "util-linux"}, {"/usr/bin/unshare", "util-linux"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			t.Skipf("%s not installed (make deps installs %s)", f.path, f.pkg)
		}
	}
	// The image holds busybox alone: a dynamically linked one cannot run.
	ef, err := elf.Open(busyboxBin)
	if err != nil {
		t.Skipf("%s: %v", busyboxBin, err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skipf("%s is dynamically linked: the test image needs busybox-static", busyboxBin)
		}
	}
}

// mountNS is a lab host's own mount namespace, kept alive by a holder
// process, with directories of its own mounted over /run/docker/plugins
// (the one place dockerd looks for plugins) and /run/containerd (where
// containerd's shims put their sockets, whatever its configuration says).
type mountNS struct {
	pid     int    // the holder's
	plugins string // the host's /run/docker/plugins, as the root namespace sees it
	run     string // the host's /run/containerd
	// docker is the socket of Docker's API in this host, which its
	// agent reads (--docker-host); the host's dockerd serves it too.
	docker string
}

// path is the namespace's file, for nsenter --mount.
func (m *mountNS) path() string { return fmt.Sprintf("/proc/%d/ns/mnt", m.pid) }

// enter is the command prefix that runs a command in this mount namespace
// and the network namespace ns.
func (m *mountNS) enter(ns string) []string {
	return []string{"nsenter", "--mount=" + m.path(), "--net=/var/run/netns/" + ns}
}

// mountNS makes a mount namespace for host name, removed at cleanup. It is
// a slave of the root namespace: namespaces `ip netns add` makes later
// appear inside it, and nothing mounted inside it (the plugin directory,
// dockerd's container namespaces) shows outside.
func (l *lab) mountNS(name string) *mountNS {
	t := l.t
	t.Helper()
	m := &mountNS{plugins: filepath.Join(l.dir, name+"-plugins"), run: filepath.Join(l.dir, name+"-containerd"),
		docker: filepath.Join(l.dir, name+"-docker.sock")}
	binds := [][2]string{{m.plugins, "/run/docker/plugins"}, {m.run, "/run/containerd"}}
	for _, b := range binds {
		if err := os.Mkdir(b[0], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test process, whatever happens
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		for _, b := range binds {
			if mounts := mountsUnder("/proc/self/mountinfo", b[0]); len(mounts) > 0 {
				t.Errorf("mounted in the root namespace after the host's namespace is gone: %v", mounts)
			}
		}
	})
	// unshare sets the propagation before it runs sleep: a bind made
	// earlier could reach the root namespace.
	testutil.WaitFor(t, "the mount namespace of "+name, 10*time.Second, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.pid))
		return string(b) == "sleep\x00infinity\x00"
	})
	for _, b := range binds {
		l.run("nsenter", "--mount="+m.path(), "mkdir", "-p", b[1])
		l.run("nsenter", "--mount="+m.path(), "mount", "--bind", b[0], b[1])
	}
	return m
}

// mountsUnder lists the mount points of a mountinfo file at dir or below
// it, deepest first.
func mountsUnder(mountinfo, dir string) []string {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := unescapeMountinfo(f[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// processesUnder lists the processes whose command line names a path under
// dir (dockerd, its containerd, the shims) and all their descendants (the
// containers' processes).
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	in := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cmdline) == 0 { // gone, or a zombie
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		parent[pid], _ = strconv.Atoi(f[1])
		in[pid] = bytes.Contains(cmdline, []byte(dir+"/"))
	}
	for grew := true; grew; {
		grew = false
		for pid, pp := range parent {
			if !in[pid] && in[pp] {
				in[pid], grew = true, true
			}
		}
	}
	var out []int
	for pid, yes := range in {
		if yes {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// testImageTar is the test image's file system: busybox-static and a link
// for each of its applets. Made once per test process.
var testImageTar = sync.OnceValues(func() ([]byte, error) {
	list, err := exec.Command(busyboxBin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %v", busyboxBin, err)
	}
	bin, err := os.ReadFile(busyboxBin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"root/", 0o700}, {"tmp/", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin)), ModTime: now}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

// dockerd is a Docker daemon in a lab host's network and mount namespace,
// with its own data, state and socket; removed at cleanup with its
// containerd, containers and mounts.
type dockerd struct {
	l    *lab
	name string
	ns   string
	mnt  *mountNS
	// dir holds the data root, exec root, pidfile, socket and log. It is
	// short (under /tmp, not the test's temp dir): containerd's socket
	// lies deep inside the exec root, and unix socket paths must stay
	// under 108 bytes.
	dir  string
	sock string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// dockerd starts a Docker daemon in host's namespaces (the cluster must
// come from l.dockerCluster) and imports testImage into it.
func (c *cluster) dockerd(host string) *dockerd {
	c.l.t.Helper()
	h := c.hosts[host]
	if h == nil || h.mnt == nil {
		c.l.t.Fatalf("host %s has no mount namespace of its own: make the cluster with l.dockerCluster", host)
	}
	return c.l.startDockerd(host, h.ns, h.mnt)
}

// startDockerd starts a Docker daemon named name in network namespace ns
// and mount namespace mnt, and imports testImage into it.
func (l *lab) startDockerd(name, ns string, mnt *mountNS) *dockerd {
	t := l.t
	t.Helper()
	needDocker(t)
	image, err := testImageTar()
	if err != nil {
		t.Fatalf("making the test image: %v", err)
	}
	dir, err := os.MkdirTemp("/tmp", l.prefix+"-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{l: l, name: name, ns: ns, mnt: mnt, dir: dir,
		sock: filepath.Join(dir, "docker.sock"), log: filepath.Join(dir, "dockerd.log")}
	t.Cleanup(d.cleanup)
	// Not the machine's /etc/docker/daemon.json.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin, "-H", "unix://"+d.sock, "import", "-c", `CMD ["/bin/sh"]`, "-", testImage)
	cmd.Stdin = bytes.NewReader(image)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import into dockerd %s: %v\n%s", name, err, out)
	}
	return d
}

func (d *dockerd) start() {
	t := d.l.t
	t.Helper()
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(d.mnt.enter(d.ns), dockerdBin,
		// Nothing of the machine's: no bridge, no firewall rules, no
		// forwarding or masquerading switched on.
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--storage-driver=vfs", // plain directories: works on any file system
		"--config-file", filepath.Join(d.dir, "daemon.json"),
		"--data-root", filepath.Join(d.dir, "data"), "--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"), "--host", "unix://"+d.sock, "--host", "unix://"+d.mnt.docker)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Debian's containerd and runc, whatever the test's PATH holds.
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	d.cmd, d.done = cmd, done
	testutil.WaitFor(t, "dockerd "+d.name+" to answer", time.Minute, func() bool {
		select {
		case <-done:
			t.Fatalf("dockerd %s exited: %v\n%s", d.name, cmd.ProcessState, d.logText())
		default:
		}
		_, err := d.tryDocker("version")
		return err == nil
	})
}

func (d *dockerd) running() bool {
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// pid is dockerd's process id (nsenter runs it in place).
func (d *dockerd) pid() int { return d.cmd.Process.Pid }

// tryDocker runs the docker client against this daemon.
func (d *dockerd) tryDocker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, dockerBin, append([]string{"-H", "unix://" + d.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// docker runs the docker client and fails the test on error.
func (d *dockerd) docker(args ...string) string {
	d.l.t.Helper()
	out, err := d.tryDocker(args...)
	if err != nil {
		d.l.t.Fatalf("docker %s (on %s): %v\n%s", strings.Join(args, " "), d.name, err, out)
	}
	return out
}

// stop stops dockerd with SIGTERM (it stops its containers and its
// containerd) and waits for both.
func (d *dockerd) stop() {
	if !d.running() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.l.t.Logf("dockerd %s still running 30s after SIGTERM: killed", d.name)
		d.cmd.Process.Kill()
		<-d.done
	}
	d.waitContainerd()
}

// kill9 kills dockerd with SIGKILL. Its containerd goes too, but not at
// once; the shims stay, as after a crash.
func (d *dockerd) kill9() {
	d.cmd.Process.Kill()
	<-d.done
	d.waitContainerd()
}

// restart starts dockerd again on the same directories (stopping it first
// if it runs). Live restore is off: containers still running after a kill9
// are stopped as it starts, each within its stop timeout (10s unless the
// container was run with --stop-timeout).
func (d *dockerd) restart() {
	d.l.t.Helper()
	d.stop()
	d.start()
}

// waitContainerd waits until dockerd's containerd is gone, zombie
// included: a new dockerd that finds its pid still alive waits for it
// instead of starting its own, and gives up ("timeout waiting for
// containerd to start"). After dockerd dies its containerd takes a while
// to exit, and longer to be reaped by init.
func (d *dockerd) waitContainerd() {
	b, err := os.ReadFile(filepath.Join(d.dir, "exec", "containerd", "containerd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	if !testutil.Eventually(30*time.Second, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }) {
		d.l.t.Errorf("containerd (pid %d) of dockerd %s still there 30s after dockerd exited", pid, d.name)
	}
}

// logText is dockerd's log without the gRPC connection chatter.
func (d *dockerd) logText() string {
	b, _ := os.ReadFile(d.log)
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "module=grpc") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// cleanup removes every container, stops dockerd, kills what is left of
// it, unmounts what it mounted and removes its directory.
func (d *dockerd) cleanup() {
	t := d.l.t
	var ids []string // every container it still knows, running or not
	if entries, err := os.ReadDir(filepath.Join(d.dir, "data", "containers")); err == nil {
		for _, e := range entries {
			ids = append(ids, e.Name())
		}
	}
	if d.running() {
		if ids, err := d.tryDocker("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			if out, err := d.tryDocker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...); err != nil {
				t.Logf("docker rm -f on %s: %v\n%s", d.name, err, out)
			}
		}
		d.stop()
	}
	// After a kill9 or a failed stop: shims and their containers.
	for _, pid := range processesUnder(d.dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if !testutil.Eventually(10*time.Second, func() bool { return len(processesUnder(d.dir)) == 0 }) {
		t.Errorf("processes of dockerd %s left after SIGKILL: %v", d.name, processesUnder(d.dir))
	}
	// A container killed behind runc's back (or, now and then, one stopped
	// as dockerd restarts) leaves its empty cgroups under the machine's
	// cgroup tree.
	for _, id := range ids {
		for _, pattern := range []string{"/sys/fs/cgroup/*/docker/", "/sys/fs/cgroup/docker/"} {
			dirs, _ := filepath.Glob(pattern + id)
			for _, dir := range dirs {
				syscall.Rmdir(dir) // fails, harmlessly, if gone or in use
			}
		}
	}
	// The containers' netns files and dockerd's own binds were made in the
	// host's mount namespace; none should be in the root one.
	for _, mp := range mountsUnder(fmt.Sprintf("/proc/%d/mountinfo", d.mnt.pid), d.dir) {
		if out, err := exec.Command("nsenter", "--mount="+d.mnt.path(), "umount", "-l", mp).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s in %s's namespace: %v\n%s", mp, d.name, err, out)
		}
	}
	for _, mp := range mountsUnder("/proc/self/mountinfo", d.dir) {
		t.Errorf("dockerd %s mounted %s in the root namespace", d.name, mp)
		exec.Command("umount", "-l", mp).Run()
	}
	if t.Failed() {
		t.Logf("dockerd %s log %s:\n%s", d.name, d.log, d.logText())
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("removing dockerd %s's directory: %v", d.name, err)
	}
}

// leftovers says what of dockerd remains: processes, mounts, its directory.
func (d *dockerd) leftovers() []string {
	var out []string
	for _, pid := range processesUnder(d.dir) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("process %d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	for _, mp := range mountsUnder("/proc/self/mountinfo", d.dir) {
		out = append(out, "mount "+mp)
	}
	if _, err := os.Stat(d.dir); err == nil {
		out = append(out, "directory "+d.dir)
	}
	return out
}

// TestDocker_harness: a dockerd in each of two hosts runs containers; each
// host's agent shares its dockerd's mount namespace, where the container
// namespaces dockerd makes can be entered by path, and has a plugin
// directory of its own; the agent restarts after kill -9 and dockerd after
// kill -9; nothing is left afterwards.
func TestDocker_harness(t *testing.T) {
	var ds []*dockerd
	var mnts []*mountNS
	t.Cleanup(func() { // registered first, so it runs last
		for _, d := range ds {
			if left := d.leftovers(); len(left) > 0 {
				t.Errorf("dockerd %s left behind:\n%s", d.name, strings.Join(left, "\n"))
			}
		}
		for _, m := range mnts {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", m.pid)); err == nil {
				t.Errorf("mount namespace holder %d still running", m.pid)
			}
		}
	})
	l := newLab(t)
	c := l.dockerCluster("198.18.70", nil, "h1", "h2")
	d1, d2 := c.dockerd("h1"), c.dockerd("h2")
	ds, mnts = []*dockerd{d1, d2}, []*mountNS{c.hosts["h1"].mnt, c.hosts["h2"].mnt}

	for _, d := range ds {
		d.docker("run", "--rm", "--network", "none", testImage, "true")
	}
	c.cli("h1", "cluster", "members")

	// The agent and dockerd of a host share a mount namespace, one per host.
	nsOf := func(pid int) string {
		s, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, h := range []string{"h1", "h2"} {
		if a, dd := nsOf(c.hosts[h].cmd.Process.Pid), nsOf(map[string]*dockerd{"h1": d1, "h2": d2}[h].pid()); a != dd {
			t.Errorf("%s: agent in mount namespace %s, dockerd in %s", h, a, dd)
		}
	}
	if nsOf(d1.pid()) == nsOf(d2.pid()) || nsOf(d1.pid()) == nsOf(os.Getpid()) {
		t.Errorf("dockerds share a mount namespace with each other or the test")
	}

	// Each host has its own plugin directory.
	if err := os.WriteFile(filepath.Join(c.hosts["h1"].mnt.plugins, "probe.sock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inMnt := func(pid int, args ...string) error {
		return exec.Command("nsenter", append([]string{fmt.Sprintf("--mount=/proc/%d/ns/mnt", pid)}, args...)...).Run()
	}
	if err := inMnt(d1.pid(), "test", "-e", "/run/docker/plugins/probe.sock"); err != nil {
		t.Errorf("h1's dockerd does not see the file in h1's plugin directory: %v", err)
	}
	if err := inMnt(d2.pid(), "test", "-e", "/run/docker/plugins/probe.sock"); err == nil {
		t.Errorf("h2's dockerd sees the file in h1's plugin directory")
	}
	if _, err := os.Stat("/run/docker/plugins/probe.sock"); err == nil {
		t.Errorf("the root namespace sees the file in h1's plugin directory")
	}

	// A container's namespace, as dockerd names it to a plugin, can be
	// entered from the host's mount namespace, and only there.
	// (sleep ignores SIGTERM as pid 1: without --stop-timeout, the restart
	// below would wait 10s to stop it.)
	d1.docker("run", "-d", "--network", "none", "--name", "sleeper", "--stop-timeout", "1", testImage, "sleep", "600")
	key := strings.TrimSpace(d1.docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "sleeper"))
	if !strings.HasPrefix(key, d1.dir+"/") {
		t.Errorf("SandboxKey %q is not under the exec root of dockerd h1", key)
	}
	// (nsenter opens --net before it enters --mount: a second nsenter.)
	if err := inMnt(c.hosts["h1"].cmd.Process.Pid, "nsenter", "--net="+key, "true"); err != nil {
		t.Errorf("cannot enter %s from h1's agent's mount namespace: %v", key, err)
	}
	if err := exec.Command("nsenter", "--net="+key, "true").Run(); err == nil {
		t.Errorf("%s is a namespace in the root mount namespace too", key)
	}

	// The agent comes back after kill -9, in the same mount namespace.
	c.kill9("h1")
	c.start("h1", c.hosts["h2"].addr+":7946")
	c.cli("h1", "cluster", "members")
	if a, dd := nsOf(c.hosts["h1"].cmd.Process.Pid), nsOf(d1.pid()); a != dd {
		t.Errorf("restarted agent in mount namespace %s, dockerd in %s", a, dd)
	}

	// dockerd comes back after kill -9; its container was stopped.
	d1.kill9()
	d1.restart()
	if out := d1.docker("ps", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers running after dockerd restarted:\n%s", out)
	}
	d1.docker("run", "--rm", "--network", "none", testImage, "true")
	if out := d1.docker("run", "--rm", "--network", "none", testImage, "sh", "-c", "echo $((6*7))"); strings.TrimSpace(out) != "42" {
		t.Errorf("sh in the test image: %q", out)
	}
}
