package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	vxlab "github.com/vxnet/vxnet/lab"
)

// TestLab_demo runs the demo as `vxnet lab demo --hosts 2` does, on a lab
// of its own: every check passes, between the containers and from each
// of them to the outside (through its host's gateway, and by the name the
// agents forward to the outside's DNS server), and nothing of the lab is
// left once it is done.
func TestLab_demo(t *testing.T) {
	testLabDemo(t, vxlab.Config{ID: "e2edemo", Hosts: 2}, false)
}

// TestLab_demoEtcd is the demo on a lab whose agents keep their tables in
// etcd (`vxnet lab demo --store etcd`), kept afterwards (`--keep`): the
// same matrix passes, the outside's DNS server still answers a container
// by the name the agents forward to it, and `lab down` then removes
// everything, the etcd server and the kept servers with it.
func TestLab_demoEtcd(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatal("etcd not found: run `make deps` (installs etcd-server)")
	}
	testLabDemo(t, vxlab.Config{ID: "e2edemoetcd", Hosts: 3, Store: vxlab.StoreEtcd}, true)
}

func testLabDemo(t *testing.T, cfg vxlab.Config, keep bool) {
	needRoot(t)
	for _, tool := range []string{"dig", "dnsmasq", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps` (installs dnsutils, dnsmasq and nftables)", tool)
		}
	}
	cfg.Binary, cfg.Out = vxnetBin, t.Output()
	t.Cleanup(func() { vxlab.Down(context.WithoutCancel(t.Context()), cfg) }) // after a panic; RunDemo takes it down itself
	m, err := vxlab.RunDemo(t.Context(), cfg, vxlab.DefaultDemoConfig(), keep)
	if err != nil {
		t.Fatal(err)
	}
	if keep {
		l, err := vxlab.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := l.State().Containers[0]
		out, err := exec.Command("ip", "netns", "exec", c.Netns, "dig", "+short", "+time=2", "+tries=3", vxlab.OutsideName).CombinedOutput()
		if want := l.State().Outside.Addr.String(); err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("kept demo: %s asking for %s: %v %q, want %s", c.Netns, vxlab.OutsideName, err, out, want)
		}
		if err := vxlab.Down(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	if m.Outside == nil || len(m.Outside) != len(m.Nodes) {
		t.Fatalf("the matrix has no outside column for its %d containers", len(m.Nodes))
	}
	if m.Failed() {
		var b strings.Builder
		m.RenderSummary(&b)
		t.Errorf("checks failed:\n%s", b.String())
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && vxlab.IsLabNetns(cfg.ID, f[0]) {
			t.Errorf("namespace %s left after the demo", f[0])
		}
	}
}
