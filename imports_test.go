package vxnet_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowed lists, for each package of the module, the module packages and
// outside module paths it may import (docs/ARCHITECTURE.md, "Layers": arrows point
// down; dataplane, gossip, ipam and dns never import each other).
// Standard library imports are always allowed. A package missing here
// fails the test, so a new package must state its place.
var allowed = map[string][]string{
	"cmd/vxnet":             {"agent", "agent/config", "api", "driver", "lab", "bench", "dataplane/static", "dataplane/seal", "plugin/docker", "plugin/cni", "kvs", "join", "tables", "deploy/systemd"},
	"deploy/systemd":        {},                                                               // the systemd unit (vxnet install, the package)
	"plugin/docker":         {"api", "internal/names"},                                        // Docker's plugin protocol over the agent (its Backend)
	"plugin/cni":            {"api", "internal/names", "github.com/containernetworking/cni/"}, // CNI's verbs, a client of the agent's API
	"cmd/vxnet-cni":         {"plugin/cni"},
	"api":                   {}, // types, client and server: adapters need not import the agent
	"agent":                 {"*module*", "github.com/vishvananda/", "golang.org/x/", "golang.zx2c4.com/", "github.com/hashicorp/", "github.com/miekg/dns", "github.com/prometheus/", "go.etcd.io/", "github.com/Microsoft/hcsshim"},
	"dataplane":             {"dataplane/tun", "dataplane/udp", "dataplane/vxlan", "dataplane/seal", "dataplane/lb", "golang.org/x/sys", "golang.org/x/net", "golang.zx2c4.com/wireguard/tun"},
	"dataplane/seal":        {"golang.org/x/crypto", "golang.org/x/sys"}, // the AEADs and key derivation of encrypted networks
	"dataplane/lb":          {},                                          // Maglev tables of services' tasks: the standard library alone
	"dataplane/static":      {"dataplane"},
	"dataplane/vxlan":       {},
	"dataplane/afpacket":    {"golang.org/x/sys", "internal/rawio"},
	"hns":                   {"github.com/Microsoft/hcsshim", "golang.org/x/sys", "dataplane/vxlan"},
	"hns/hnstest":           {"hns", "dataplane/vxlan"},
	"dataplane/tun":         {"golang.zx2c4.com/", "golang.org/x/sys", "golang.org/x/net", "github.com/vishvananda/", "internal/rawio", "dataplane/vxlan"},
	"dataplane/tun/tuntest": {"dataplane/tun"},
	"dataplane/udp":         {"golang.org/x/sys", "golang.org/x/net", "dataplane/vxlan"},
	"dataplane/udp/udptest": {"dataplane/udp", "dataplane/vxlan"},
	"gossip":                {"github.com/hashicorp/memberlist", "internal/queue"},
	"gossip/memnet":         {"gossip", "github.com/hashicorp/memberlist"},
	"gossip/gossiptest":     {"gossip/memnet", "github.com/hashicorp/memberlist"},
	"kvs":                   {"gossip", "internal/queue", "go.etcd.io/", "go.uber.org/zap", "google.golang.org/grpc"},
	"ipam":                  {"internal/names"},
	"ipam/ipamtest":         {"ipam"},
	"ipam/kvstable":         {"ipam", "kvs"},
	"dns":                   {"github.com/miekg/dns", "golang.org/x/sys", "internal/names", "internal/bindretry"},
	"dns/dnstest":           {"github.com/miekg/dns"},
	"internal/queue":        {},
	"internal/rawio":        {"golang.org/x/sys"},
	"internal/testutil":     {},
	"internal/etcdtest":     {"internal/etcdrun"},
	"internal/etcdrun":      {"internal/freeport"},
	"internal/freeport":     {},
	"internal/names":        {},
	"lab":                   {"gossip", "dns", "join"},
	"bench":                 {"lab", "dataplane", "kvs", "gossip", "internal", "github.com/hashicorp/memberlist", "dns", "ipam"},
	"e2e":                   {"github.com/vishvananda/netns"},
	"driver":                {"dataplane", "hns"},
	"tables":                {"dataplane/vxlan", "dhcp", "internal/names", "join"},
	"join":                  {}, // join tokens and the join service's protocol
	"agent/config":          {"api", "dataplane", "gossip", "hns", "join", "internal/names", "golang.org/x/sys"},
	"internal/bindretry":    {},
	"internal/leftout":      {},
	"internal/jobs":         {},
	"metrics":               {"dataplane", "dns", "github.com/prometheus/"},
	"hoststate":             {"ipam", "kvs", "tables"},
	"plan":                  {"tables", "driver", "dataplane", "dns", "hns", "hostnet"}, // and hns/hnstest in its tests
	"hostnet":               {"dataplane", "dhcp"},
	"dhcp":                  {"dataplane/vxlan"},
}

const module = "github.com/vxnet/vxnet"

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func TestImportRules(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command("go", "list", "-json", module+"/...")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (GOOS=%s): %v", goos, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p pkg
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
			if rel == "" {
				continue // this test's own package
			}
			rules, ok := allowed[rel]
			if !ok {
				t.Errorf("package %s has no entry in the import rules (imports_test.go)", rel)
				continue
			}
			for _, imp := range p.Imports {
				if !isStd(imp) && !permitted(rules, imp) {
					t.Errorf("GOOS=%s: %s imports %s, which docs/ARCHITECTURE.md's layers forbid", goos, rel, imp)
				}
			}
		}
	}
}

// TestBinaryLinksNoFakes: the vxnet binary links no test package: no
// fake (tuntest, udptest, gossiptest, ipamtest, hnstest, dnstest) and no
// test helper (internal/testutil). What the product needs of one, such as
// bench's in-memory gossip network (gossip/memnet), lives in a package of
// its own.
func TestBinaryLinksNoFakes(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command("go", "list", "-deps", module+"/cmd/vxnet")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (GOOS=%s): %v", goos, err)
		}
		for _, p := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(p, module+"/")
			if ok && (strings.HasSuffix(rel, "test") || strings.Contains(rel, "testutil")) {
				t.Errorf("GOOS=%s: cmd/vxnet links %s, a package for tests", goos, rel)
			}
		}
	}
}

func isStd(path string) bool {
	first := strings.SplitN(path, "/", 2)[0]
	return !strings.Contains(first, ".")
}

func permitted(rules []string, imp string) bool {
	inModule := strings.HasPrefix(imp, module+"/")
	rel := strings.TrimPrefix(imp, module+"/")
	for _, r := range rules {
		switch {
		case r == "*module*" && inModule:
			return true
		case inModule && (rel == r || strings.HasPrefix(rel, r+"/")):
			return true
		case !inModule && strings.HasPrefix(imp, r):
			return true
		}
	}
	return false
}
