package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/vxnet/vxnet/api"
)

// fakeAgent is the agent's API in memory, with the checks the plugin
// relies on (names unique per network, a network's fields).
type fakeAgent struct {
	mu       sync.Mutex
	down     bool
	self     string
	networks map[string]api.Network
	eps      map[string]api.Endpoint // network/name
	reqs     []api.EndpointCreate
	next     int
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{self: "h1", networks: map[string]api.Network{}, eps: map[string]api.Endpoint{}, next: 2}
}

var errDown = errors.New("no vxnet agent at /run/vxnet/vxnet.sock (is `vxnet agent` running? --socket or VXNET_SOCKET pick another)")

func (f *fakeAgent) Network(_ context.Context, name string) (api.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return api.Network{}, errDown
	}
	n, ok := f.networks[name]
	if !ok {
		return n, &api.Error{Code: api.CodeNotFound, Field: "name", Message: fmt.Sprintf("no network %q", name)}
	}
	return n, nil
}

func (f *fakeAgent) CreateNetwork(_ context.Context, req api.NetworkCreate) (api.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return api.Network{}, errDown
	}
	if req.Driver == "bogus" {
		return api.Network{}, &api.Error{Code: api.CodeBadRequest, Field: "driver", Message: `unknown driver "bogus"`}
	}
	if req.Subnet == "" {
		req.Subnet = "10.0.0.0/24"
	}
	if req.Driver == "" {
		req.Driver = "overlay"
	}
	n := api.Network{Name: req.Name, Driver: req.Driver, Subnet: req.Subnet, Subnet6: req.Subnet6, Gateway: "10.0.9.1",
		IPRange: req.IPRange, Internal: req.Internal, ContainerGateway: "10.0.9.1", Egress: !req.Internal}
	if req.Internal {
		n.ContainerGateway = ""
	}
	f.networks[req.Name] = n
	return n, nil
}

func (f *fakeAgent) Endpoints(context.Context) ([]api.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	var out []api.Endpoint
	for _, e := range f.eps {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeAgent) CreateEndpoint(_ context.Context, req api.EndpointCreate) (api.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return api.Endpoint{}, errDown
	}
	f.reqs = append(f.reqs, req)
	if req.MTU != 0 && req.MTU < 68 {
		return api.Endpoint{}, &api.Error{Code: api.CodeBadRequest, Field: "mtu", Message: fmt.Sprintf("mtu %d: too small", req.MTU)}
	}
	key := req.Network + "/" + req.Name
	if _, ok := f.eps[key]; ok {
		return api.Endpoint{}, &api.Error{Code: api.CodeConflict, Field: "name", Message: fmt.Sprintf("endpoint %q exists on network %q", req.Name, req.Network)}
	}
	ip := req.IP
	if ip == "" {
		ip = fmt.Sprintf("10.0.9.%d", f.next)
		f.next++
	}
	addrs := []string{ip + "/24"}
	if f.networks[req.Network].Subnet6 != "" {
		ip6 := req.IP6
		if ip6 == "" {
			ip6 = "fd00:9::2"
		}
		addrs = append(addrs, ip6+"/64")
	}
	ep := api.Endpoint{Name: req.Name, Network: req.Network, Host: f.self, MAC: "02:42:0a:00:09:02", Addresses: addrs,
		Aliases: req.Aliases, Netns: req.Netns, Ifname: req.Ifname, Publish: req.Publish, Labels: req.Labels}
	f.eps[key] = ep
	return ep, nil
}

func (f *fakeAgent) RemoveEndpoint(_ context.Context, network, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	key := network + "/" + name
	if _, ok := f.eps[key]; !ok {
		return &api.Error{Code: api.CodeNotFound, Field: "name", Message: "no endpoint"}
	}
	delete(f.eps, key)
	return nil
}

func (f *fakeAgent) RemoveNetwork(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	if _, ok := f.networks[name]; !ok {
		return &api.Error{Code: api.CodeNotFound, Field: "name", Message: fmt.Sprintf("no network %q", name)}
	}
	for _, e := range f.eps {
		if e.Network == name {
			return &api.Error{Code: api.CodeConflict, Field: "name", Message: fmt.Sprintf("network %q has endpoints", name)}
		}
	}
	delete(f.networks, name)
	return nil
}

func (f *fakeAgent) Members(context.Context) ([]api.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	return []api.Member{{Name: f.self, Self: true}, {Name: "h2"}}, nil
}

func (f *fakeAgent) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func newTestPlugin(f *fakeAgent) *Plugin {
	return &Plugin{Dial: func(string) Agent { return f }}
}

const (
	ctrID   = "3f8a2b1c9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
	netnsP  = "/var/run/netns/cni-1234"
	confWeb = `{"cniVersion":"1.1.0","name":"web","type":"vxnet","subnet":"10.0.9.0/24"}`
)

func cmdArgs(conf, args string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: ctrID, Netns: netnsP, IfName: "eth0", Args: args, StdinData: []byte(conf)}
}

// cniCode is a CNI error's code, or -1.
func cniCode(err error) int {
	var te *types.Error
	if errors.As(err, &te) {
		return int(te.Code)
	}
	return -1
}

// TestParseConf_errorsNameTheField: a configuration the plugin cannot use
// is a CNI error of the right code, naming the field and the value.
func TestParseConf_errorsNameTheField(t *testing.T) {
	for conf, want := range map[string]struct {
		code int
		says string
	}{
		`{`: {int(types.ErrDecodingFailure), "not valid JSON"},
		`{"name":"w","type":"vxnet","mtu":"1400"}`:                                                         {int(types.ErrInvalidNetworkConfig), `configuration key "mtu": want a JSON number, not a string`},
		`{"name":"w","type":"vxnet","internal":"yes"}`:                                                     {int(types.ErrInvalidNetworkConfig), `key "internal": want a JSON boolean`},
		`{"name":"web","type":"bridge"}`:                                                                   {int(types.ErrInvalidNetworkConfig), `type "bridge"`},
		`{"name":"-web","type":"vxnet"}`:                                                                   {int(types.ErrInvalidNetworkConfig), `network "-web"`},
		`{"name":"w","type":"vxnet","network":"a b"}`:                                                      {int(types.ErrInvalidNetworkConfig), `network "a b"`},
		`{"name":"w","type":"vxnet","subnet":"10.0.9.1/24"}`:                                               {int(types.ErrInvalidNetworkConfig), `subnet "10.0.9.1/24"`},
		`{"name":"w","type":"vxnet","subnet6":"fd00::/200"}`:                                               {int(types.ErrInvalidNetworkConfig), `subnet6 "fd00::/200"`},
		`{"name":"w","type":"vxnet","gateway":"x"}`:                                                        {int(types.ErrInvalidNetworkConfig), `gateway "x"`},
		`{"name":"w","type":"vxnet","mtu":-1}`:                                                             {int(types.ErrInvalidNetworkConfig), "mtu -1"},
		`{"name":"w","type":"vxnet","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}`: {int(types.ErrInvalidNetworkConfig), "portMappings[0]"},
		`{"name":"w","type":"vxnet","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"sctp"}]}}`:    {int(types.ErrInvalidNetworkConfig), `protocol "sctp"`},
		`{"name":"w","type":"vxnet","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"hostIP":"127.0.0.1"}]}}`: {int(types.ErrInvalidNetworkConfig), `hostIP "127.0.0.1"`},
		`{"name":"w","type":"vxnet","runtimeConfig":{"ips":["10.0.9.300"]}}`:                                                       {int(types.ErrInvalidNetworkConfig), `ips[0] "10.0.9.300"`},
	} {
		_, err := ParseConf([]byte(conf))
		if cniCode(err) != want.code || !strings.Contains(fmt.Sprint(err), want.says) {
			t.Errorf("%s: %v (code %d), want code %d saying %q", conf, err, cniCode(err), want.code, want.says)
		}
	}
	c, err := ParseConf([]byte(confWeb))
	if err != nil || c.Network != "web" || c.Socket != api.DefaultSocket {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

// TestAdd_endpointAndResult: ADD makes the network on first use, then the
// endpoint in the container's namespace with the runtime's device name,
// named after the pod (Kubernetes' arguments), labelled, with the
// runtime's ports, addresses and aliases; the result has the interface
// (its MAC and sandbox), the address with its gateway, a default route and
// vxnet's resolver. ADD again for the same attachment is the same
// endpoint; DEL removes it and is idempotent; CHECK finds it, then not.
func TestAdd_endpointAndResult(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	conf := `{"cniVersion":"1.1.0","name":"web","type":"vxnet","subnet":"10.0.9.0/24",` +
		`"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"ips":["10.0.9.7/24"],"aliases":{"web":["db","Not_A_Label!","not-a-label","DB"]},"mac":"02:AB:00:00:00:07"}}`
	args := cmdArgs(conf, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-7d9f")
	args.Netns = filepath.Join(t.TempDir(), "netns") // CHECK looks for it
	if err := os.WriteFile(args.Netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, version, err := p.AddResult(args)
	if err != nil {
		t.Fatal(err)
	}
	if version != "1.1.0" {
		t.Errorf("version %q", version)
	}
	if n, ok := f.networks["web"]; !ok || n.Subnet != "10.0.9.0/24" {
		t.Errorf("network not made as configured: %+v", f.networks)
	}
	want := api.EndpointCreate{Network: "web", Name: "cart-7d9f-shop", Netns: args.Netns, Ifname: "eth0", IP: "10.0.9.7", MAC: "02:ab:00:00:00:07",
		Publish: []string{"8080:80/tcp"}, Aliases: []string{"db", "not-a-label"},
		Labels: map[string]string{LabelContainer: ctrID, LabelIfname: "eth0", LabelNetName: "web", LabelPod: "cart-7d9f", LabelNamespace: "shop"}}
	if len(f.reqs) != 1 || !reflect.DeepEqual(f.reqs[0], want) {
		t.Errorf("endpoint request %+v, want %+v", f.reqs, want)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Mac == "" || res.Interfaces[0].Sandbox != args.Netns {
		t.Errorf("interfaces %+v", res.Interfaces)
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.0.9.7/24" || res.IPs[0].Gateway.String() != "10.0.9.1" || *res.IPs[0].Interface != 0 {
		t.Errorf("ips %+v", res.IPs)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || res.Routes[0].GW.String() != "10.0.9.1" {
		t.Errorf("routes %+v", res.Routes)
	}
	if !reflect.DeepEqual(res.DNS.Nameservers, []string{"127.0.0.11"}) || !reflect.DeepEqual(res.DNS.Search, []string{"web"}) {
		t.Errorf("dns %+v", res.DNS)
	}
	// Older versions: the result converts.
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0"} {
		r, err := res.GetAsVersion(v)
		if err != nil || r.Version() != v {
			t.Errorf("result as %s: %v", v, err)
		}
	}

	if _, _, err := p.AddResult(args); err != nil {
		t.Errorf("ADD again: %v", err)
	}
	if err := p.Check(args); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := p.Del(args); err != nil {
		t.Fatal(err)
	}
	if len(f.eps) != 0 {
		t.Errorf("endpoints after DEL: %v", f.eps)
	}
	if err := p.Del(args); err != nil {
		t.Errorf("DEL again: %v", err)
	}
	if err := p.Check(args); cniCode(err) != int(types.ErrUnknownContainer) {
		t.Errorf("CHECK after DEL: %v", err)
	}
	f.setDown(true)
	if err := p.Del(args); cniCode(err) != int(types.ErrTryAgainLater) || !strings.Contains(err.Error(), "agent does not answer") {
		t.Errorf("DEL with the agent down: %v", err)
	}
	if err := p.Status(args); cniCode(err) != errPluginNotAvailable {
		t.Errorf("STATUS with the agent down: %v", err)
	}
	f.setDown(false)
	if err := p.Status(args); err != nil {
		t.Errorf("STATUS: %v", err)
	}
}

// TestAdd_podmanArgs: podman's --ip, --ip6 and --mac-address arrive as
// CNI_ARGS IP (comma-separated) and MAC; runtimeConfig, when it has them,
// comes first; a malformed one is refused naming it, before any endpoint.
func TestAdd_podmanArgs(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	dual := `{"cniVersion":"1.0.0","name":"web","type":"vxnet","subnet":"10.0.9.0/24","subnet6":"fd00:9::/64"}`
	if _, _, err := p.AddResult(cmdArgs(dual, "IgnoreUnknown=1;K8S_POD_NAME=pe;IP=10.0.9.201,fd00:9::201;MAC=02:42:0a:2a:00:99")); err != nil {
		t.Fatal(err)
	}
	if r := f.reqs[0]; r.IP != "10.0.9.201" || r.IP6 != "fd00:9::201" || r.MAC != "02:42:0a:2a:00:99" {
		t.Errorf("CNI_ARGS IP and MAC: request %+v", r)
	}
	withRC := `{"cniVersion":"1.0.0","name":"web","type":"vxnet","runtimeConfig":{"ips":["10.0.9.202"],"mac":"02:42:0a:2a:00:98"}}`
	if _, _, err := p.AddResult(cmdArgs(withRC, "K8S_POD_NAME=pf;IP=10.0.9.203;MAC=02:42:0a:2a:00:97")); err != nil {
		t.Fatal(err)
	}
	if r := f.reqs[1]; r.IP != "10.0.9.202" || r.MAC != "02:42:0a:2a:00:98" {
		t.Errorf("runtimeConfig beside CNI_ARGS: request %+v, want runtimeConfig's", r)
	}
	for _, c := range []struct{ args, says string }{
		{"K8S_POD_NAME=x;IP=10.0.9.300", `CNI_ARGS IP="10.0.9.300"`},
		{"K8S_POD_NAME=x;IP=10.0.9.5,10.0.9.6", "CNI_ARGS IP: one address per family"},
		{"K8S_POD_NAME=x;MAC=02:42", `CNI_ARGS MAC="02:42"`},
	} {
		if _, _, err := p.AddResult(cmdArgs(dual, c.args)); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %q", c.args, err, c.says)
		}
	}
	if len(f.reqs) != 2 {
		t.Errorf("endpoints asked for despite the refusals: %+v", f.reqs[2:])
	}
}

// TestResult_IPv6Only: an IPv6-only network's one gateway (the API's
// containerGateway) is the IPv6 address's gateway and the ::/0 route's.
func TestResult_IPv6Only(t *testing.T) {
	n := api.Network{Name: "v6", Subnet: "fd00:54::/64", ContainerGateway: "fd00:54::1", Egress: true}
	ep := api.Endpoint{MAC: "02:42:00:00:00:02", Addresses: []string{"fd00:54::2/64"}}
	res, err := result(&attachment{ifname: "eth0", netns: "/x"}, n, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 1 || res.IPs[0].Gateway.String() != "fd00:54::1" {
		t.Errorf("ips %+v", res.IPs)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "::/0" || res.Routes[0].GW.String() != "fd00:54::1" {
		t.Errorf("routes %+v, want ::/0 via fd00:54::1", res.Routes)
	}
}

// TestAdd_names: without Kubernetes' arguments an endpoint is named after
// the container ID; podman's (the pod's name as its namespace too) give
// the name alone; a second interface adds its name.
func TestAdd_names(t *testing.T) {
	for _, c := range []struct {
		args, ifname, want string
	}{
		{"", "eth0", "c-3f8a2b1c9d0e"},
		{"K8S_POD_NAMESPACE=api;K8S_POD_NAME=api", "eth0", "api"},
		{"K8S_POD_NAMESPACE=default;K8S_POD_NAME=Web_1", "eth0", "web-1"},
		{"K8S_POD_NAME=web", "net1", "web-net1"},
	} {
		at := &attachment{container: ctrID, ifname: c.ifname}
		var ka k8sArgs
		if err := types.LoadArgs(c.args, &ka); err != nil {
			t.Fatal(err)
		}
		at.pod, at.ns = string(ka.K8S_POD_NAME), string(ka.K8S_POD_NAMESPACE)
		if got := at.endpointName(); got != c.want {
			t.Errorf("%q %s: %q, want %q", c.args, c.ifname, got, c.want)
		}
	}
}

// TestAdd_refusals: a network that exists with other fields, a driver the
// agent refuses, two addresses of one family, the agent down and no
// namespace: each a CNI error of the right code naming the field.
func TestAdd_refusals(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	f.networks["web"] = api.Network{Name: "web", Driver: "overlay", Subnet: "10.0.8.0/24"}
	for _, c := range []struct {
		conf string
		code int
		says string
	}{
		{confWeb, int(types.ErrInvalidNetworkConfig), `subnet "10.0.8.0/24"`},
		{`{"cniVersion":"1.1.0","name":"web","type":"vxnet","driver":"nat"}`, int(types.ErrInvalidNetworkConfig), `driver "overlay"`},
		{`{"cniVersion":"1.1.0","name":"new","type":"vxnet","driver":"bogus"}`, int(types.ErrInvalidNetworkConfig), "field driver"},
		{`{"cniVersion":"1.1.0","name":"web","type":"vxnet","runtimeConfig":{"ips":["10.0.8.5","10.0.8.6"]}}`, int(types.ErrInvalidNetworkConfig), "one address per family"},
	} {
		_, _, err := p.AddResult(cmdArgs(c.conf, ""))
		if cniCode(err) != c.code || !strings.Contains(fmt.Sprint(err), c.says) {
			t.Errorf("%s: %v, want code %d saying %q", c.conf, err, c.code, c.says)
		}
	}
	noNS := cmdArgs(confWeb, "")
	noNS.Netns = ""
	if _, _, err := p.AddResult(noNS); !onWindows && cniCode(err) != int(types.ErrInvalidNetNS) {
		t.Errorf("ADD without a namespace: %v", err)
	}
	f.setDown(true)
	if _, _, err := p.AddResult(cmdArgs(`{"cniVersion":"1.1.0","name":"x","type":"vxnet"}`, "")); cniCode(err) != int(types.ErrTryAgainLater) {
		t.Errorf("ADD with the agent down: %v", err)
	}
	if len(f.reqs) != 0 {
		t.Errorf("endpoints asked for despite the refusals: %+v", f.reqs)
	}
}

// TestGC_removesStale: GC removes this host's endpoints of the network the
// plugin made whose attachment the runtime no longer lists, and leaves
// the valid ones, other hosts', other networks' and vxnet's own.
func TestGC_removesStale(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	mk := func(id, ifname string) {
		a := cmdArgs(confWeb, "")
		a.ContainerID, a.IfName = id, ifname
		if _, _, err := p.AddResult(a); err != nil {
			t.Fatal(err)
		}
	}
	mk("aaaaaaaaaaaa1111", "eth0")
	mk("bbbbbbbbbbbb2222", "eth0")
	mk("cccccccccccc3333", "eth0")
	f.eps["web/other-host"] = api.Endpoint{Name: "other-host", Network: "web", Host: "h2", Labels: map[string]string{LabelContainer: "dddd", LabelIfname: "eth0", LabelNetName: "web"}}
	f.eps["web/native"] = api.Endpoint{Name: "native", Network: "web", Host: "h1"}
	gc := `{"cniVersion":"1.1.0","name":"web","type":"vxnet","cni.dev/valid-attachments":[{"containerID":"bbbbbbbbbbbb2222","ifname":"eth0"}]}`
	if err := p.GC(&skel.CmdArgs{StdinData: []byte(gc)}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for k := range f.eps {
		left = append(left, k)
	}
	sort.Strings(left)
	if want := []string{"web/c-bbbbbbbbbbbb", "web/native", "web/other-host"}; !reflect.DeepEqual(left, want) {
		t.Errorf("after GC: %v, want %v", left, want)
	}
}

// TestFromAPI_codes: the agent's errors become CNI codes, and an agent
// that does not answer is said once (its details say where).
func TestFromAPI_codes(t *testing.T) {
	for _, c := range []struct {
		err  error
		code uint
	}{
		{&api.Error{Code: api.CodeBadRequest, Field: "ip", Message: "bad"}, types.ErrInvalidNetworkConfig},
		{&api.Error{Code: api.CodeConflict, Field: "network", Message: "exhausted"}, types.ErrTryAgainLater},
		{&api.Error{Code: api.CodeInternal, Message: "x"}, types.ErrInternal},
		// Another's address, or one in another host's block: no retry helps.
		{&api.Error{Code: api.CodeConflict, Field: "ip", Message: "in another host's block"}, types.ErrInvalidNetworkConfig},
		{&api.Error{Code: api.CodeConflict, Field: "ip6", Message: "taken"}, types.ErrInvalidNetworkConfig},
		{&api.Error{Code: api.CodeBusy, Field: "name", Message: "being removed"}, types.ErrTryAgainLater},
		{&api.Error{Code: api.CodeBusy, Field: "ip", Message: "held by an endpoint being removed"}, types.ErrTryAgainLater},
		{errDown, types.ErrTryAgainLater},
	} {
		err := fromAPI(c.err, "doing")
		if got := cniCode(err); got != int(c.code) {
			t.Errorf("%v: code %d, want %d", c.err, got, c.code)
		}
		if strings.Count(err.Error(), "running?") > 1 {
			t.Errorf("%v: says it twice: %v", c.err, err)
		}
	}
}

// TestAttachments_keptApart: an ID that is not hex is hashed, a name cut
// to 63 characters keeps a hash of the rest, a name another container
// holds is a lasting error (not "try again"), an endpoint of the same
// container ID on another host is not this one's, and DEL works with a
// configuration ADD refused.
func TestAttachments_keptApart(t *testing.T) {
	a := &attachment{container: "cnitool-0123456789abcdef0123", ifname: "eth0"}
	b := &attachment{container: "cnitool-0123456789abcdef0124", ifname: "eth0"}
	if a.endpointName() == b.endpointName() || !strings.HasPrefix(a.endpointName(), "c-") || len(a.endpointName()) != 14 {
		t.Errorf("IDs that are not hex: %q %q", a.endpointName(), b.endpointName())
	}
	long := strings.Repeat("p", 60)
	x := &attachment{pod: long, ns: "ns-one", ifname: "eth0"}
	y := &attachment{pod: long, ns: "ns-two", ifname: "eth0"}
	if x.endpointName() == y.endpointName() || len(x.endpointName()) > 63 {
		t.Errorf("long names: %q %q", x.endpointName(), y.endpointName())
	}

	f := newFakeAgent()
	p := newTestPlugin(f)
	if _, _, err := p.AddResult(cmdArgs(confWeb, "K8S_POD_NAME=api")); err != nil {
		t.Fatal(err)
	}
	other := cmdArgs(confWeb, "K8S_POD_NAME=api")
	other.ContainerID = "ffffffffffff0000"
	if _, _, err := p.AddResult(other); cniCode(err) != int(types.ErrInternal) || !strings.Contains(err.Error(), "another container's") {
		t.Errorf("a name another container holds: %v", err)
	}
	// The same container ID's endpoint on another host: not this one's.
	f.mu.Lock()
	for k, e := range f.eps {
		e.Host = "h2"
		f.eps[k] = e
	}
	f.mu.Unlock()
	if _, _, err := p.AddResult(cmdArgs(confWeb, "K8S_POD_NAME=api")); err == nil {
		t.Error("ADD took another host's endpoint of the same container ID as its own")
	}
	if err := p.Del(cmdArgs(confWeb, "K8S_POD_NAME=api")); err != nil || len(f.eps) != 1 {
		t.Errorf("DEL removed another host's endpoint, or failed: %v %v", err, f.eps)
	}
	bad := `{"cniVersion":"1.1.0","name":"web","type":"vxnet","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"sctp"}]}}`
	if err := p.Del(cmdArgs(bad, "")); err != nil {
		t.Errorf("DEL with a configuration ADD refuses: %v", err)
	}
}

// TestCheck_prevResult: CHECK compares the endpoint's addresses with the
// result ADD gave (prevResult).
func TestCheck_prevResult(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	args := cmdArgs(confWeb, "K8S_POD_NAME=api")
	args.Netns = filepath.Join(t.TempDir(), "netns")
	os.WriteFile(args.Netns, nil, 0o600)
	if _, _, err := p.AddResult(args); err != nil {
		t.Fatal(err)
	}
	with := func(ip string) *skel.CmdArgs {
		a := *args
		a.StdinData = []byte(`{"cniVersion":"1.1.0","name":"web","type":"vxnet","prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"` + ip + `/24","interface":0}]}}`)
		return &a
	}
	if err := p.Check(with("10.0.9.2")); err != nil {
		t.Errorf("CHECK with the address ADD gave: %v", err)
	}
	if err := p.Check(with("10.0.9.99")); err == nil || !strings.Contains(err.Error(), "10.0.9.99") {
		t.Errorf("CHECK with an address the endpoint lost: %v", err)
	}
}

// TestAdd_optionsMustAgree: an option the configuration gives must be the
// existing network's, so a container meant for an encrypted network never
// joins a plain one of the name; options it leaves out, and false for one
// the network does not set, are no conflict.
func TestAdd_optionsMustAgree(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	f.networks["plain"] = api.Network{Name: "plain", Driver: "overlay", Subnet: "10.0.8.0/24"}
	f.networks["sealed"] = api.Network{Name: "sealed", Driver: "overlay", Subnet: "10.0.7.0/24", Options: map[string]string{"encrypted": ""}}
	for _, c := range []struct {
		conf, says string
	}{
		{`{"cniVersion":"1.1.0","name":"plain","type":"vxnet","options":{"encrypted":"true"}}`, `options.encrypted "(not set)"`},
		{`{"cniVersion":"1.1.0","name":"sealed","type":"vxnet","options":{"encrypted":"false"}}`, `options.encrypted ""`},
		{`{"cniVersion":"1.1.0","name":"plain","type":"vxnet","options":{"mss-clamp":"1200"}}`, "options.mss-clamp"},
	} {
		_, _, err := p.AddResult(cmdArgs(c.conf, ""))
		if cniCode(err) != int(types.ErrInvalidNetworkConfig) || !strings.Contains(fmt.Sprint(err), c.says) {
			t.Errorf("%s: %v, want it refused saying %q", c.conf, err, c.says)
		}
	}
	if len(f.reqs) != 0 {
		t.Fatalf("endpoints asked for despite the refusals: %+v", f.reqs)
	}
	for i, conf := range []string{
		`{"cniVersion":"1.1.0","name":"sealed","type":"vxnet","options":{"encrypted":"true"}}`,
		`{"cniVersion":"1.1.0","name":"sealed","type":"vxnet"}`,
		`{"cniVersion":"1.1.0","name":"plain","type":"vxnet","options":{"encrypted":"false"}}`,
	} {
		a := cmdArgs(conf, "")
		a.ContainerID = fmt.Sprintf("agree%d-0123456789", i)
		if _, _, err := p.AddResult(a); err != nil {
			t.Errorf("%s: %v", conf, err)
		}
	}
}

// TestAdd_failureTakesItsNetwork: an ADD that made the network and then
// failed (a configuration the agent refuses for the endpoint) removes the
// network again; one that found the network leaves it.
func TestAdd_failureTakesItsNetwork(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	_, _, err := p.AddResult(cmdArgs(`{"cniVersion":"1.1.0","name":"cnew","type":"vxnet","mtu":40}`, ""))
	if cniCode(err) != int(types.ErrInvalidNetworkConfig) || !strings.Contains(fmt.Sprint(err), "mtu") {
		t.Fatalf("ADD with mtu 40: %v, want it refused naming mtu", err)
	}
	if _, ok := f.networks["cnew"]; ok {
		t.Fatal("the failed ADD left the network it made")
	}
	f.networks["web"] = api.Network{Name: "web", Driver: "overlay", Subnet: "10.0.9.0/24"}
	if _, _, err := p.AddResult(cmdArgs(`{"cniVersion":"1.1.0","name":"web","type":"vxnet","mtu":40}`, "")); err == nil {
		t.Fatal("ADD with mtu 40 succeeded")
	}
	if _, ok := f.networks["web"]; !ok {
		t.Fatal("a failed ADD removed a network it did not make")
	}
	// Refused before anything is asked of the agent.
	_, _, err = p.AddResult(cmdArgs(`{"cniVersion":"1.1.0","name":"cnew2","type":"vxnet","runtimeConfig":{"ips":["10.0.9.5","10.0.9.6"]}}`, ""))
	if cniCode(err) != int(types.ErrInvalidNetworkConfig) {
		t.Fatalf("two addresses of one family: %v", err)
	}
	if _, ok := f.networks["cnew2"]; ok {
		t.Fatal("a refused configuration made its network")
	}
}

// TestDel_malformedArgs: DEL works whatever CNI_ARGS holds, so that a
// container whose ADD was refused for them can still be deleted.
func TestDel_malformedArgs(t *testing.T) {
	f := newFakeAgent()
	p := newTestPlugin(f)
	if _, _, err := p.AddResult(cmdArgs(confWeb, "garbage")); cniCode(err) != int(types.ErrInvalidEnvironmentVariables) {
		t.Fatalf("ADD with CNI_ARGS=garbage: %v", err)
	}
	if _, _, err := p.AddResult(cmdArgs(confWeb, "")); err != nil {
		t.Fatal(err)
	}
	if err := p.Del(cmdArgs(confWeb, "garbage")); err != nil {
		t.Fatalf("DEL with CNI_ARGS=garbage: %v", err)
	}
	if len(f.eps) != 0 {
		t.Fatalf("DEL left %v", f.eps)
	}
}
