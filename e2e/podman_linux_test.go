package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// podman is a podman of its own (root, runroot, configuration) whose
// containers' networks come from vxnet's CNI plugin, talking to one
// host's agent.
type podman struct {
	l    *lab
	name string
	ns   string // the lab host's network namespace, where podman runs
	dir  string
	conf string // CONTAINERS_CONF
}

// rootfs extracts the test image's file system (busybox) once per lab.
func (l *lab) rootfs() string {
	l.t.Helper()
	dir := filepath.Join(l.dir, "rootfs")
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err == nil {
		return dir
	}
	image, err := testImageTar()
	if err != nil {
		l.t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(image))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			l.t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, os.FileMode(h.Mode))
		case tar.TypeSymlink:
			os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			os.WriteFile(p, b, os.FileMode(h.Mode))
		}
	}
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return dir
}

// podman sets up a podman in host's network namespace (as the host's
// runtime: the portmap plugin's rules land there) that attaches
// containers through cn's plugin directory and confDir (the network
// configurations for host's agent).
func (c *cluster) podman(host string, cn *cniLab, confDir string) *podman {
	l := c.l
	t := l.t
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is missing: make deps installs it (apt-get install podman containernetworking-plugins)")
	}
	// Short (podman refuses a runroot over 50 characters), under /tmp.
	dir, err := os.MkdirTemp("/tmp", l.prefix+"-pm-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podman{l: l, name: host, ns: c.hosts[host].ns, dir: dir}
	p.conf = filepath.Join(p.dir, "containers.conf")
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = [%q, "/usr/lib/cni"]
network_config_dir = %q
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
`, cn.binDir, confDir, filepath.Join(p.dir, "events.log"))
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.try("rm", "-af", "-t", "0")
		exec.Command("umount", "-R", filepath.Join(p.dir, "root")).Run()
		os.RemoveAll(p.dir)
	})
	return p
}

func (p *podman) try(args ...string) (string, error) {
	argv := append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--storage-driver", "vfs", "--tmpdir", filepath.Join(p.dir, "tmp")}, args...)
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + p.ns, "podman"}, argv...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf, "XDG_RUNTIME_DIR="+filepath.Join(p.dir, "xdg"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podman) run(args ...string) string {
	p.l.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.l.t.Fatalf("podman %s (%s): %v\n%s", strings.Join(args, " "), p.name, err, out)
	}
	return out
}

// TestPodman_twoHosts: podman on two hosts, each with vxnet's CNI plugin
// (and the standard portmap chained after it) talking to its host's
// agent. Containers of the two hosts reach each other by name; a
// vxnet-native endpoint reaches both; a port published through portmap
// answers on the host's address; the agent killed and restarted under a
// running container keeps it connected; removed containers leave no
// endpoint, lease or device on any host.
func TestPodman_twoHosts(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.82", "h1", "h2")
	cn := l.cniLab()
	rootfs := l.rootfs()
	pods := map[string]*podman{}
	for _, h := range []string{"h1", "h2"} {
		// As a user installs it: vxnet itself as the plugin, and its
		// conflist (portmap chained).
		dir := filepath.Join(cn.confDir, h)
		l.run(vxnetBin, "--socket", c.hosts[h].sock, "cni", "install", "--bin-dir", cn.binDir, "--conf-dir", dir,
			"--network", "web", "--subnet", "10.82.0.0/24", "--portmap")
		pods[h] = c.podman(h, cn, dir)
	}
	p1, p2 := pods["h1"], pods["h2"]
	p1.run("run", "-d", "--name", "pa", "--network", "web", "-p", "8080:80", "--rootfs", rootfs,
		"sh", "-c", "mkdir -p /www && echo hello-from-pa > /www/index.html && exec httpd -f -p 80 -h /www")
	p2.run("run", "-d", "--name", "pb", "--network", "web", "--rootfs", rootfs, "sleep", "3600")
	if out, err := p2.try("exec", "pb", "ping", "-c1", "-W3", "pa"); err != nil {
		t.Errorf("pb (h2) to pa (h1) by name: %v\n%s", err, out)
	}
	if out, err := p1.try("exec", "pa", "ping", "-c1", "-W3", "pb.web"); err != nil {
		t.Errorf("pa to pb.web: %v\n%s", err, out)
	}
	native := l.netns("native")
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "native", "--netns", native)
	for _, name := range []string{"pa", "pb"} {
		l.in(native, "ping", "-c", "1", "-W", "5", name)
	}
	// portmap's DNAT on h1: h2 reaches pa's httpd on h1's address.
	if out, err := l.tryIn(c.hosts["h2"].ns, "curl", "-s", "-m", "5", "http://"+c.hosts["h1"].addr+":8080/"); err != nil || !strings.Contains(out, "hello-from-pa") {
		t.Errorf("pa's port 80 published on h1:8080 by portmap: %v\n%s", err, out)
	}

	// The agent killed under running containers, and back.
	c.kill9("h1")
	c.start("h1", "")
	testutil.WaitFor(t, "pa reachable again from pb", 30*time.Second, func() bool {
		_, err := p2.try("exec", "pb", "ping", "-c1", "-W1", "pa")
		return err == nil
	})

	p1.run("rm", "-f", "-t", "0", "pa")
	p2.run("rm", "-f", "-t", "0", "pb")
	c.cli("h2", "endpoint", "rm", "--network", "web", "native")
	for _, h := range []string{"h1", "h2"} {
		testutil.WaitFor(t, h+": no endpoint or lease left", 15*time.Second, func() bool {
			leases, _ := c.hostLeases(h)
			return len(c.endpointList(h)) == 0 && len(leases["web"]) == 0
		})
	}
}
