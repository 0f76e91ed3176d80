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
	testLabDemo(t, vxlab.Config{ID: "e2edemo", Hosts: 2})
}

// TestLab_demoEtcd is the demo on a lab whose agents keep their tables in
// etcd (`vxnet lab demo --store etcd`): the same matrix passes, and the
// etcd server goes with the lab.
func TestLab_demoEtcd(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatal("etcd not found: run `make deps` (installs etcd-server)")
	}
	testLabDemo(t, vxlab.Config{ID: "e2edemoetcd", Hosts: 3, Store: vxlab.StoreEtcd})
}

func testLabDemo(t *testing.T, cfg vxlab.Config) {
	needRoot(t)
	for _, tool := range []string{"dig", "dnsmasq", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps` (installs dnsutils, dnsmasq and nftables)", tool)
		}
	}
	cfg.Binary, cfg.Out = vxnetBin, t.Output()
	t.Cleanup(func() { vxlab.Down(context.WithoutCancel(t.Context()), cfg) }) // after a panic; RunDemo takes it down itself
	m, err := vxlab.RunDemo(t.Context(), cfg, vxlab.DefaultDemoConfig(), false)
	if err != nil {
		t.Fatal(err)
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
