package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/bench"
)

func runBench(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = cmdBench(stdio{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestCmdBench_usageAndErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args     []string
		code     int
		out, err string
	}{
		"no args":         {nil, 2, "", "Commands:"},
		"help":            {[]string{"help"}, 0, "vxnet bench <command>", ""},
		"unknown":         {[]string{"frob"}, 2, "", `unknown command "frob"`},
		"dataplane help":  {[]string{"dataplane", "--help"}, 0, "", "UDP 64 B ≥ 0.5"},
		"control help":    {[]string{"control", "--help"}, 0, "", "churn + 1% loss"},
		"dataplane stray": {[]string{"dataplane", "extra"}, 2, "", `unexpected argument "extra"`},
		"bad time":        {[]string{"dataplane", "--time", "soon"}, 2, "", "want a duration like 10s"},
		"short time":      {[]string{"dataplane", "--time", "100ms"}, 2, "", "want at least 1s"},
		"zero reps":       {[]string{"dataplane", "--reps", "0"}, 2, "", "want at least 1s and 1"},
		"control stray":   {[]string{"control", "x"}, 2, "", `unexpected argument "x"`},
		"dns-child bare":  {[]string{"dns-child"}, 1, "", "the number of names"},
		"dns-child names": {[]string{"dns-child", "x"}, 1, "", "want a positive integer"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runBench(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("code %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestSecondsFlag_set(t *testing.T) {
	for in, want := range map[string]time.Duration{"10": 10 * time.Second, "2.5": 2500 * time.Millisecond, "1m": time.Minute, "3s": 3 * time.Second} {
		var d time.Duration
		if err := (secondsFlag{&d}).Set(in); err != nil || d != want {
			t.Errorf("%q: %v, %v; want %v", in, d, err, want)
		}
	}
}

// TestFastProfile checks the constant that stands for gossip.ProfileFast.
func TestFastProfile(t *testing.T) {
	if p := (bench.GossipScenario{Profile: bench.ProfileFast}).Profile.String(); p != "fast" {
		t.Errorf("bench.ProfileFast is the %q profile, want fast", p)
	}
}

func TestControlReport_markdown(t *testing.T) {
	r := controlReport{
		Gossip:   []gossipRow{{Nodes: 10, Scenario: "quiet", P50ms: 17, P90ms: 134, P99ms: 211, MaxMs: 211, BytesPerNodeSec: 4300}},
		Failover: []failoverRow{{Nodes: 10, WithdrawnMs: 2500}},
		IPAM:     []ipamRow{{Hosts: 3, CreatorMs: 12, P50ms: 42, P90ms: 44, MaxMs: 45}},
		DNS:      []dnsRow{{Server: "vxnet", QPS: 72000, CPUus: 13.9, P50ms: 0.1, P99ms: 2, P99MinMs: 1.5, P99MaxMs: 7}},
		Errors:   map[string]string{"ipam 50": "boom", "dns": "no dnsperf"},
	}
	md := r.markdown()
	for _, want := range []string{
		"| 10 | quiet | 17 ms | 134 ms | 211 ms | 211 ms | 0 | 4.3 k |",
		"| 10 | 2.50 s |",
		"| 3 | 12 ms | 42 ms | 44 ms | 45 ms |",
		"| vxnet | 72k | 13.9 µs | 0.10 ms | 2.00 ms | 1.50–7.00 ms |",
		"**dns failed:** no dnsperf\n\n**ipam 50 failed:** boom",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
