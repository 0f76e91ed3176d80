package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunDataplane_brief builds the testbed with a freshly built vxnet,
// runs one repetition of one-second tests on every path (the socat
// relay's, Open vSwitch's and wireguard-go's too, where they are
// installed, as make deps does), and checks that every figure was
// measured, the machine's CPU time on every path, the data planes' own
// where the benchmark runs them, and that no namespace or daemon is left.
func TestRunDataplane_brief(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a namespace testbed and runs iperf3 for about 20 s (not with -short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the testbed is made of network namespaces (run `sudo go test ./bench -run Dataplane`)")
	}
	for _, tool := range []string{"ip", "iperf3", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run `make deps` (installs iproute2, iperf3, iputils-ping)", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "vxnet")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vxnet/vxnet/cmd/vxnet").CombinedOutput(); err != nil {
		t.Fatalf("building vxnet: %v\n%s", err, out)
	}
	cfg := DataplaneConfig{Binary: bin, Time: time.Second, Reps: 1, Prefix: fmt.Sprintf("vxb%d-", os.Getpid())}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	r, err := RunDataplaneContext(ctx, cfg, &progress)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Markdown())

	paths := 5 // underlay, kernel, vxnet, vxnet to a VIP, vxnet encrypted
	_, err = exec.LookPath("socat")
	relay := err == nil
	if relay {
		paths++
	}
	ovs := ovsWanted(DataplaneConfig{}, io.Discard)
	if ovs {
		paths++
	}
	wg := wireguardWanted(&DataplaneConfig{}, io.Discard)
	if wg {
		paths++
	}
	if len(r.Samples) != paths {
		t.Fatalf("%d samples, want one per path (%d)", len(r.Samples), paths)
	}
	for _, s := range r.Samples {
		for name, v := range map[string]float64{"TCP 1": s.TCP1Gbps, "TCP 4": s.TCP4Gbps, "UDP 64 B": s.UDP64PPS,
			"UDP sent": s.UDP64SentPPS, "RTT p50": s.RTTP50us, "RTT p99": s.RTTP99us} {
			if !(v > 0) {
				t.Errorf("%s: %s = %v, want > 0", s.Path, name, v)
			}
		}
		if s.Path == PathWireGuard {
			if s.UDP64DeliveredPPS != 0 {
				t.Errorf("%s: UDP delivered %v, want none (its own tunnel shares the server's counters)", s.Path, s.UDP64DeliveredPPS)
			}
		} else if s.UDP64DeliveredPPS < s.UDP64PPS*0.999 {
			t.Errorf("%s: UDP delivered %v pps, fewer than the %v received", s.Path, s.UDP64DeliveredPPS, s.UDP64PPS)
		}
		if s.Path == PathVxnet || s.Path == PathVIP || s.Path == PathSealed || s.Path == PathWireGuard {
			for _, test := range []string{TestTCP1, TestTCP4, TestUDP64} {
				if !(s.CPUSeconds[test] > 0) {
					t.Errorf("%s: CPU during %s: %v, want > 0", s.Path, test, s.CPUSeconds[test])
				}
			}
		} else if s.CPUSeconds != nil {
			t.Errorf("%s: CPU seconds %v, want none (the benchmark runs no process of its own)", s.Path, s.CPUSeconds)
		}
		if !(s.MachineCPUSeconds[TestTCP1] > 0) {
			t.Errorf("%s: machine CPU during TCP 1 stream %v, want > 0", s.Path, s.MachineCPUSeconds[TestTCP1])
		}
	}
	for _, m := range r.Metrics {
		if m.VxnetVsKernel <= 0 || m.KernelVsUnderlay <= 0 || relay && m.RelayVsKernel <= 0 {
			t.Errorf("%s: ratios %v %v %v", m.Name, m.KernelVsUnderlay, m.VxnetVsKernel, m.RelayVsKernel)
		}
	}
	wants := []string{"rep 1/1 underlay: TCP 1 stream… ", "rep 1/1 kernel vxlan: UDP 64 B… ", "rep 1/1 vxnet: ping RTT… p50 ", "testbed removed"}
	if relay {
		wants = append(wants, "rep 1/1 socat relay: ping RTT… p50 ")
		if !strings.Contains(r.Markdown(), "| metric | socat relay |") {
			t.Error("the report has no relay table")
		}
	}
	if ovs {
		wants = append(wants, "rep 1/1 Open vSwitch: TCP 1 stream… ", "rep 1/1 Open vSwitch: ping RTT… p50 ")
		if len(r.PeerTargets) == 0 {
			t.Error("the report judges vxnet against no peer")
		}
	}
	wants = append(wants, "rep 1/1 vxnet encrypted: TCP 1 stream… ")
	if !strings.Contains(r.Markdown(), "| metric | vxnet encrypted | wireguard-go |") {
		t.Error("the report has no encrypted table")
	}
	if wg {
		wants = append(wants, "rep 1/1 wireguard-go: ping RTT… p50 ")
		if m := r.metric("tcp1"); m == nil || m.WireGuard.N != 1 || m.Sealed.N != 1 {
			t.Error("the report lacks the encrypted paths' TCP 1 stream")
		}
	}
	for _, want := range wants {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q", want)
		}
	}
	left, err := listNetns(context.Background(), cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if out, _ := exec.Command("pgrep", "-f", "ovs-vswitchd unix:"+os.TempDir()).CombinedOutput(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ovs-vswitchd still running: pids %s", out)
	}
	if out, _ := exec.Command("pgrep", "-f", "[-]f "+cfg.Prefix+"w").CombinedOutput(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("wireguard-go still running: pids %s", out)
	}
}
