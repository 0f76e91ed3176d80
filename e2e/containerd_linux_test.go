package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestContainerd_reachesPodman: a containerd container (ctr run, with its
// own containerd in the lab host's namespace) whose namespace vxnet's CNI
// plugin attached, as a runtime's CNI library does, reaches a podman
// container of another host by name; DEL after the container is gone
// leaves nothing.
func TestContainerd_reachesPodman(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.83", "h1", "h2")
	cn := l.cniLab()
	rootfs := l.rootfs()
	// ctr writes no resolv.conf: the image's names vxnet's resolver.
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "resolv.conf"), []byte("nameserver 127.0.0.11\nsearch web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 1.0.0: podman 4.3's CNI library reads results up to it.
	for _, h := range []string{"h1", "h2"} {
		dir := filepath.Join(cn.confDir, h)
		os.MkdirAll(dir, 0o755)
		h2 := *cn
		h2.confDir = dir
		h2.conf("web", "1.0.0", map[string]any{"network": "web", "subnet": "10.83.0.0/24", "socket": c.hosts[h].sock})
	}
	p1 := c.podman("h1", cn, filepath.Join(cn.confDir, "h1"))
	p1.run("run", "-d", "--name", "pa", "--network", "web", "--rootfs", rootfs, "sleep", "3600")

	ctrd := c.containerd("h2")
	ns := l.netns("ctr1")
	h2conf := *cn
	h2conf.confDir = filepath.Join(cn.confDir, "h2")
	h2conf.must("add", "web", ns, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=box")
	out, err := ctrd.ctr("run", "--rm", "--with-ns", "network:/run/netns/"+ns, "--rootfs", rootfs, "box", "/bin/ping", "-c1", "-W3", "pa")
	if err != nil || !strings.Contains(out, "1 packets received") {
		t.Errorf("the containerd container to pa (podman, h1) by name: %v\n%s", err, out)
	}
	if e, ok := c.endpoints("h1")["box"]; !ok || e.Host != "h2" {
		t.Errorf("h1 lists box as %+v, want the endpoint of h2", e)
	}
	l.run("ip", "netns", "del", ns)
	h2conf.must("del", "web", ns, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=box")
	p1.run("rm", "-f", "-t", "0", "pa")
	for _, h := range []string{"h1", "h2"} {
		testutil.WaitFor(t, h+": no endpoint or lease left", 15*time.Second, func() bool {
			leases, _ := c.hostLeases(h)
			return len(c.endpointList(h)) == 0 && len(leases["web"]) == 0
		})
	}
}

// containerdProc is a containerd of its own (root, state, socket) in a lab
// host's network namespace.
type containerdProc struct {
	ns, sock string
}

func (c *cluster) containerd(host string) *containerdProc {
	c.l.t.Helper()
	return c.containerdWith(host, "", false)
}

// containerdWith starts a containerd with extra configuration, its CRI
// plugin on if cri.
func (c *cluster) containerdWith(host, extra string, cri bool) *containerdProc {
	t := c.l.t
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("containerd is missing: make deps installs it (with docker.io)")
	}
	dir, err := os.MkdirTemp("/tmp", c.l.prefix+"-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	p := &containerdProc{ns: c.hosts[host].ns, sock: filepath.Join(dir, "c.sock")}
	disabled := `["io.containerd.grpc.v1.cri"]`
	if cri {
		disabled = "[]"
	}
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = %s\n[grpc]\n  address = %q\n%s",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), disabled, p.sock, extra)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	cmd := exec.Command("nsenter", "--net=/run/netns/"+p.ns, bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		// Shims and their containers outlive containerd.
		for _, pid := range processesUnder(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		testutil.WaitFor(t, "containerd's shims to exit", 30*time.Second, func() bool { return len(processesUnder(dir)) == 0 })
		for _, m := range mountsUnder("/proc/self/mountinfo", dir) {
			exec.Command("umount", "-l", m).Run()
		}
		os.RemoveAll(dir)
	})
	testutil.WaitFor(t, "containerd on "+host+" to answer", 30*time.Second, func() bool {
		_, err := p.ctr("version")
		return err == nil
	})
	return p
}

func (p *containerdProc) ctr(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + p.ns, "ctr", "--address", p.sock}, args...)...).CombinedOutput()
	return string(out), err
}
