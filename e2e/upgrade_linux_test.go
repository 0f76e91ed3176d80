package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

var releaseLine = regexp.MustCompile(`^## (v[0-9][^ ]*) .*\(commit ([0-9a-f]{40})\)`)

// previousRelease is the newest release CHANGELOG.md lists that this
// commit descends from and is not: its version and commit.
func previousRelease(t *testing.T) (string, string) {
	t.Helper()
	f, err := os.Open("../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git clone (%v): the previous release cannot be built", err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := releaseLine.FindStringSubmatch(sc.Text())
		if m == nil || m[2] == strings.TrimSpace(string(head)) {
			continue
		}
		if exec.Command("git", "-C", "..", "merge-base", "--is-ancestor", m[2], "HEAD").Run() != nil {
			t.Skipf("release %s (%s) is not in this clone's history (a shallow clone?)", m[1], m[2])
		}
		return m[1], m[2]
	}
	t.Skip("CHANGELOG.md lists no earlier release")
	return "", ""
}

// buildRelease builds vxnet at commit from a git worktree of its own.
func buildRelease(t *testing.T, version, commit string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "-C", "..", "worktree", "add", "--detach", dir, commit).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", commit, err, out)
	}
	t.Cleanup(func() {
		exec.Command("git", "-C", "..", "worktree", "remove", "--force", dir).Run()
		exec.Command("git", "-C", "..", "worktree", "prune").Run()
	})
	bin := filepath.Join(filepath.Dir(dir), "vxnet-"+version)
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+strings.TrimPrefix(version, "v")+" -X main.commit="+commit[:7], "-o", bin, "./cmd/vxnet")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", version, err, out)
	}
	return bin
}

// TestUpgrade_rollingFromPreviousRelease: a cluster of the previous
// release's agents and this build's, mixed, upgraded one host at a time
// while a TCP stream, a ping and DNS lookups run across hosts. The
// invariants: the TCP connection survives every restart (iperf3 ends
// well), every lookup is answered (with its retries), the pings come
// back after each step, no address is held twice, and every container
// keeps its address.
func TestUpgrade_rollingFromPreviousRelease(t *testing.T) {
	l := newLab(t)
	version, commit := previousRelease(t)
	old := buildRelease(t, version, commit)
	if out, err := exec.Command(old, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), strings.TrimPrefix(version, "v")) {
		t.Fatalf("%s version: %v\n%s", old, err, out)
	}
	names := []string{"u1", "u2", "u3"}
	c := l.clusterHosts("198.18.88", nil, false, names...)
	c.hosts["u1"].bin, c.hosts["u2"].bin = old, old // u3 runs this build
	first := c.hosts["u1"].addr + ":7946"
	for i, n := range names {
		join := ""
		if i > 0 {
			join = first
		}
		c.start(n, join)
	}
	c.waitMembers(names, 3)
	c.cli("u1", "network", "create", "--subnet", "10.88.0.0/24", "web")
	ctr := map[string]string{}
	for i, n := range names {
		name := fmt.Sprintf("c%d", i+1)
		ctr[name] = l.netns(name)
		c.cli(n, "endpoint", "create", "--network", "web", "--name", name, "--netns", ctr[name])
	}
	before := map[string]string{}
	testutil.WaitFor(t, "every host to see the 3 endpoints", 20*time.Second, func() bool {
		for _, n := range names {
			if len(c.endpoints(n)) != 3 {
				return false
			}
		}
		for k, e := range c.endpoints("u3") {
			before[k] = strings.Join(e.Addresses, ",")
		}
		return true
	})
	c3 := addrOf(t, c.endpoints("u3")["c3"])
	c1 := addrOf(t, c.endpoints("u3")["c1"])
	l.waitPing("c3 to c1 across a mixed cluster", ctr["c3"], c1.String())

	// The traffic: a TCP stream c3 -> c1, pings c1 -> c3, lookups in c2
	// of c3's name.
	l.startIn(ctr["c1"], "iperf3", "-s", "-p", "5201")
	testutil.WaitFor(t, "iperf3 to listen in c1", 10*time.Second, func() bool {
		out, _ := l.tryIn(ctr["c1"], "ss", "-ltn")
		return strings.Contains(out, ":5201")
	})
	stream := exec.Command("ip", "netns", "exec", ctr["c3"], "iperf3", "-c", c1.String(), "-t", "15", "-b", "20M", "-J", "--connect-timeout", "5000")
	var streamOut testutil.SyncBuffer
	stream.Stdout, stream.Stderr = &streamOut, &streamOut
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- stream.Wait() }()
	t.Cleanup(func() { stream.Process.Kill(); <-streamDone })
	ping := exec.Command("ip", "netns", "exec", ctr["c1"], "ping", "-i", "0.1", "-W", "1", c3.String())
	var pingOut testutil.SyncBuffer
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ping.Process.Kill()
		ping.Wait()
		if t.Failed() {
			out := pingOut.String()
			t.Logf("ping c1 -> c3, the last of it:\n%s", out[max(0, len(out)-1500):])
		}
	})
	var (
		mu       sync.Mutex
		lookups  int
		unanswer []string
	)
	stopDNS := make(chan struct{})
	dnsDone := make(chan struct{})
	go func() {
		defer close(dnsDone)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			// A client that asks again, as resolvers do (attempts): the
			// agent's DNS socket is closed for the moment it restarts.
			out, err := exec.Command("ip", "netns", "exec", ctr["c2"], "sh", "-c",
				"for i in 1 2 3; do dig +short +time=2 +tries=1 @127.0.0.11 c3.web && exit 0; sleep 0.5; done; exit 1").CombinedOutput()
			mu.Lock()
			lookups++
			// The answer is the last line (an attempt refused says so first).
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if err != nil || lines[len(lines)-1] != c3.String() {
				unanswer = append(unanswer, fmt.Sprintf("%s: %v %q", time.Now().Format("15:04:05.000"), err, out))
			}
			mu.Unlock()
			select {
			case <-stopDNS:
				return
			case <-tick.C:
			}
		}
	}()
	replies := func() int { return strings.Count(pingOut.String(), "bytes from") }
	testutil.WaitFor(t, "the traffic to flow (pings answered, the TCP stream established)", 20*time.Second, func() bool {
		out, _ := l.tryIn(ctr["c3"], "ss", "-tnH", "state", "established", "dport", "5201")
		return replies() > 3 && strings.Contains(out, ":5201")
	})

	// One host at a time: stop the old agent, start this build on the
	// same state; the host is back when the cluster sees it and the pings
	// flow again.
	for _, n := range []string{"u1", "u2"} {
		select {
		case err := <-streamDone:
			t.Fatalf("the TCP stream ended before %s's upgrade: %v\n%s", n, err, streamOut.String())
		default:
		}
		c.stop(n)
		c.hosts[n].bin = ""
		c.start(n, c.hosts["u3"].addr+":7946")
		c.waitMembers(names, 3)
		seen := replies()
		testutil.WaitFor(t, "pings c1 -> c3 to flow again after "+n+"'s upgrade", 20*time.Second, func() bool { return replies() > seen+5 })
		t.Logf("%s upgraded: %d ping replies so far", n, replies())
	}
	select {
	case err := <-streamDone:
		streamDone <- err
	case <-time.After(60 * time.Second):
		t.Fatal("iperf3 did not end")
	}
	close(stopDNS)
	<-dnsDone
	if err := <-streamDone; err != nil {
		t.Errorf("the TCP stream across the upgrades broke: %v\n%.2000s", err, streamOut.String())
	} else {
		var res struct {
			End struct {
				SumReceived struct{ Bytes int64 } `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(streamOut.String()), &res); err != nil || res.End.SumReceived.Bytes < 10<<20 {
			t.Errorf("the TCP stream moved %d bytes (%v)", res.End.SumReceived.Bytes, err)
		}
		streamDone <- nil
	}
	mu.Lock()
	if len(unanswer) > 0 {
		t.Errorf("%d of %d lookups of c3.web in c2 went unanswered during the upgrades:\n%s", len(unanswer), lookups, strings.Join(unanswer, "\n"))
	}
	t.Logf("%d lookups answered; %d ping replies", lookups, replies())
	mu.Unlock()

	// Every host runs this build, sees every endpoint at its address, and
	// no address is held twice.
	for _, n := range names {
		if out := c.cli(n, "version"); !strings.Contains(out, "speaks") {
			t.Errorf("%s: %s", n, out)
		}
		eps := c.endpoints(n)
		held := map[string]string{}
		for k, e := range eps {
			if got := strings.Join(e.Addresses, ","); got != before[k] {
				t.Errorf("%s sees %s at %s, was %s", n, k, got, before[k])
			}
			for _, a := range e.Addresses {
				if other, dup := held[a]; dup {
					t.Errorf("%s: %s held by %s and %s", n, a, other, k)
				}
				held[a] = k
			}
		}
		if len(eps) != 3 {
			t.Errorf("%s sees %d endpoints, want 3", n, len(eps))
		}
	}
}
