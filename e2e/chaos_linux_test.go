package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	vxlab "github.com/vxnet/vxnet/lab"
)

// chaosEnv=0 turns TestChaos off (it takes about two minutes).
const chaosEnv = "VXNET_CHAOS"

// TestChaos runs two short fault campaigns (3 hosts, fixed seeds, every
// fault kind, the fast profile) through lab.Chaos and fails on any
// violation, printing the report (each violation with its seed and the
// command that replays it). About 2-3 minutes in all.
func TestChaos(t *testing.T) {
	if os.Getenv(chaosEnv) == "0" {
		t.Skipf("%s=0: the fault campaign is skipped", chaosEnv)
	}
	needRoot(t)
	for _, tool := range []string{"nft", "dig"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps` (installs nftables and dnsutils)", tool)
		}
	}
	for _, seed := range []int64{1, 2} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			cfg := vxlab.ChaosConfig{
				Lab:      vxlab.Config{ID: fmt.Sprintf("e2echaos%d", seed), Hosts: 3, Binary: vxnetBin, Out: t.Output()},
				Seed:     seed,
				Duration: 50 * time.Second,
			}
			t.Cleanup(func() { vxlab.Down(context.WithoutCancel(t.Context()), cfg.Lab) }) // after a panic; Chaos takes it down itself
			r, err := vxlab.Chaos(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				var b strings.Builder
				vxlab.RenderReport(&b, r)
				t.Errorf("%d violations:%s", len(r.Violations), b.String())
			}
		})
	}
}
