package hostnet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestCaptureDNS: in a namespace where a rule like Docker's sends queries
// for 127.0.0.11:53 to another port (Docker's resolver), CaptureDNS makes
// them reach the listener on 127.0.0.11:53 itself (vxnet's), for UDP and
// TCP; applying it twice is harmless.
func TestCaptureDNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace of the test's own")
	}
	for _, tool := range []string{"nft", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs it)", tool)
		}
	}
	ns := fmt.Sprintf("vxcap%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	docker := `table ip dockerlike {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:5353
    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:5353
  }
}
`
	nft := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(docker)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	for _, srv := range []struct{ proto, port, says string }{
		{"UDP4-RECVFROM", "53", "vxnet"}, {"UDP4-RECVFROM", "5353", "docker"},
		{"TCP4-LISTEN", "53", "vxnet"}, {"TCP4-LISTEN", "5353", "docker"},
	} {
		cmd := exec.Command("ip", "netns", "exec", ns, "socat", srv.proto+":"+srv.port+",bind=127.0.0.11,fork,reuseaddr", "SYSTEM:echo "+srv.says)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	ask := func(proto string) string {
		cmd := exec.Command("ip", "netns", "exec", ns, "socat", "-T1", "-", proto+":127.0.0.11:53")
		cmd.Stdin = strings.NewReader("q\n")
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, proto := range []string{"UDP4", "TCP4"} {
		testutil.WaitFor(t, proto+" servers to answer through Docker's rule", 10*time.Second, func() bool { return ask(proto) == "docker" })
	}
	for i := 0; i < 2; i++ {
		if err := CaptureDNS("/var/run/netns/"+ns, netip.MustParseAddrPort("127.0.0.11:53")); err != nil {
			t.Fatal(err)
		}
	}
	for _, proto := range []string{"UDP4", "TCP4"} {
		if got := ask(proto); got != "vxnet" {
			t.Errorf("%s query to 127.0.0.11:53 after CaptureDNS answered by %q, want vxnet", proto, got)
		}
	}
}
