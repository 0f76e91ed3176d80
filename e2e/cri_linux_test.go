package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// pauseImageTar is an image archive (docker save's format) of the test
// image's file system that sleeps: the pod sandboxes' image, made locally
// (no registry here).
func pauseImageTar(t *testing.T, tag string) []byte {
	t.Helper()
	layer, err := testImageTar()
	if err != nil {
		t.Fatal(err)
	}
	diff := fmt.Sprintf("sha256:%x", sha256.Sum256(layer))
	config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sleep", "2147483647"}}, "rootfs": map[string]any{"type": "layers", "diff_ids": []string{diff}}})
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{tag}, "Layers": []string{"layer.tar"}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"layer.tar", layer}, {"config.json", config}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Now()})
		tw.Write(f.data)
	}
	tw.Close()
	return buf.Bytes()
}

// criContainerd is a containerd with its CRI plugin (the kubelet's way to
// it) in a lab host's namespace, whose pods get their network from vxnet's
// CNI plugin; crictl drives it.
type criContainerd struct {
	*containerdProc
	crictl string
	dir    string
}

func (c *cluster) criContainerd(host string, cn *cniLab, confDir string) *criContainerd {
	t := c.l.t
	t.Helper()
	crictl := goTool(t, "crictl", "sigs.k8s.io/cri-tools/cmd/crictl@v1.34.0")
	extra := fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "vxnet-test/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, cn.binDir, confDir)
	// The CRI plugin sets up each pod's loopback with the standard plugin.
	lo, err := os.ReadFile("/usr/lib/cni/loopback")
	if err != nil {
		t.Skip("the standard CNI plugins are missing: make deps installs them (containernetworking-plugins)")
	}
	if err := os.WriteFile(filepath.Join(cn.binDir, "loopback"), lo, 0o755); err != nil {
		t.Fatal(err)
	}
	p := c.containerdWith(host, extra, true)
	cc := &criContainerd{containerdProc: p, crictl: crictl}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+p.ns, "ctr", "--address", p.sock, "-n", "k8s.io", "images", "import", "--snapshotter", "native", "-")
	cmd.Stdin = bytes.NewReader(pauseImageTar(t, "docker.io/vxnet-test/pause:1"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("importing the pause image: %v\n%s", err, out)
	}
	return cc
}

// cri runs crictl: its output, and its warnings with the error.
func (cc *criContainerd) cri(args ...string) (string, error) {
	argv := append([]string{"--net=/run/netns/" + cc.ns, cc.crictl, "--config", "/dev/null", "--runtime-endpoint", "unix://" + cc.sock, "--timeout", "60s"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command("nsenter", argv...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), err
}

// TestCRI_podSandbox: containerd's CRI plugin, driven by crictl as a
// kubelet drives it, gets a pod sandbox's network from vxnet's CNI plugin:
// the endpoint is named after the pod and its namespace and labelled with
// them, a container of another host reaches the pod by name, and stopping
// the pod (DEL) removes the endpoint.
func TestCRI_podSandbox(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.85", "h1", "h2")
	cn := l.cniLab()
	cn.conf("pods", "1.0.0", map[string]any{"network": "pods", "subnet": "10.85.0.0/24", "socket": c.hosts["h1"].sock})
	cc := c.criContainerd("h1", cn, cn.confDir)
	pod := filepath.Join(l.dir, "pod.json")
	if err := os.WriteFile(pod, []byte(`{"metadata":{"name":"web-0","namespace":"shop","uid":"u-1","attempt":1},"log_directory":"`+l.dir+`","linux":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := cc.cri("runp", pod)
	if err != nil {
		t.Fatalf("crictl runp: %v", err)
	}
	t.Cleanup(func() { cc.cri("rmp", "-f", id) })
	e, ok := c.endpoints("h1")["web-0-shop"]
	if !ok || len(e.Addresses) != 1 {
		t.Fatalf("no endpoint web-0-shop for the pod: %v", c.endpoints("h1"))
	}
	native := l.netns("native")
	testutil.WaitFor(t, "h2 to know network pods", 10*time.Second, func() bool {
		_, err := c.tryCLI("h2", "network", "inspect", "pods")
		return err == nil
	})
	c.cli("h2", "endpoint", "create", "--network", "pods", "--name", "native", "--netns", native)
	l.in(native, "ping", "-c", "1", "-W", "5", "web-0-shop")
	if _, err := cc.cri("stopp", id); err != nil {
		t.Fatalf("crictl stopp: %v", err)
	}
	if _, ok := c.endpoints("h1")["web-0-shop"]; ok {
		t.Error("the pod's endpoint outlived the pod's stop")
	}
	if _, err := cc.cri("rmp", id); err != nil {
		t.Errorf("crictl rmp: %v", err)
	}
}
