package cni

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/names"
)

// Labels the plugin puts on its endpoints: which attachment of which
// container they are, and (Kubernetes) which pod.
const (
	LabelContainer = "cni.containerID"
	LabelIfname    = "cni.ifname"
	LabelNetName   = "cni.network"
	LabelPod       = "k8s.pod"
	LabelNamespace = "k8s.namespace"
)

// Status error codes of CNI 1.1 (STATUS).
const (
	errPluginNotAvailable = 50
)

// Agent is what the plugin asks of the local agent (api.Client).
type Agent interface {
	Network(ctx context.Context, name string) (api.Network, error)
	CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error)
	Endpoints(ctx context.Context) ([]api.Endpoint, error)
	CreateEndpoint(ctx context.Context, req api.EndpointCreate) (api.Endpoint, error)
	RemoveEndpoint(ctx context.Context, network, name string) error
	RemoveNetwork(ctx context.Context, name string) error
	Members(ctx context.Context) ([]api.Member, error)
}

// Plugin runs the verbs against an agent.
type Plugin struct {
	// Dial returns the agent at socket.
	Dial func(socket string) Agent
	// Timeout bounds each verb (default 60 s: a network's first use
	// waits for its subnet to settle in the cluster).
	Timeout time.Duration
}

func (p *Plugin) ctx() (context.Context, context.CancelFunc) {
	d := p.Timeout
	if d == 0 {
		d = 60 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

// k8sArgs are the CNI_ARGS runtimes pass (Kubernetes, podman). IP and
// MAC are podman's way (CNI network backend) of giving `--ip`, `--ip6`
// and `--mac-address`: addresses separated by commas.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAME      types.UnmarshallableString //nolint:revive // the runtime's names
	K8S_POD_NAMESPACE types.UnmarshallableString //nolint:revive
	IP                types.UnmarshallableString
	MAC               types.UnmarshallableString
}

// attachment is what a verb is about.
type attachment struct {
	conf      *NetConf
	container string
	ifname    string
	netns     string
	pod, ns   string
	argIPs    string // CNI_ARGS IP
	argMAC    string // CNI_ARGS MAC
}

func load(args *skel.CmdArgs, loose bool) (*attachment, error) {
	parse := ParseConf
	if loose {
		parse = ParseConfLoose
	}
	conf, err := parse(args.StdinData)
	if err != nil {
		return nil, err
	}
	var ka k8sArgs
	if err := types.LoadArgs(args.Args, &ka); err != nil && !loose {
		// DEL, CHECK and GC do without the pod's name: a runtime must
		// be able to delete what a malformed ADD was refused for.
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "vxnet: CNI_ARGS: "+err.Error(), "")
	}
	return &attachment{conf: conf, container: args.ContainerID, ifname: args.IfName, netns: args.Netns,
		pod: string(ka.K8S_POD_NAME), ns: string(ka.K8S_POD_NAMESPACE), argIPs: string(ka.IP), argMAC: string(ka.MAC)}, nil
}

// endpointName names the attachment's endpoint, one DNS label: the pod
// (and its namespace, but "default" or one of the pod's own name, as
// podman passes), else the container ID's first 12 characters; the
// interface when it is not the first.
func (at *attachment) endpointName() string {
	var parts []string
	switch {
	case at.pod != "":
		parts = append(parts, at.pod)
		if at.ns != "" && at.ns != "default" && at.ns != at.pod {
			parts = append(parts, at.ns)
		}
	default:
		// A runtime's hex ID: its first 12 digits, as Docker shows it;
		// any other ID (cnitool's), 12 of its hash.
		id := at.container
		if len(id) < 12 || strings.Trim(id, "0123456789abcdef") != "" {
			id = fmt.Sprintf("%x", sha256.Sum256([]byte(id)))
		}
		parts = append(parts, "c-"+id[:12])
	}
	if at.ifname != "" && at.ifname != "eth0" {
		parts = append(parts, at.ifname)
	}
	return labelOf(strings.Join(parts, "-"))
}

// labelOf makes s one DNS label: letters, digits and '-', at most 63
// (cut, with the hash of s, by names.ShortenOf).
func labelOf(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return names.ShortenOf(strings.Trim(string(b), "-"), s)
}

// Add attaches the container: the network made if need be, the endpoint
// made in its namespace, the result printed in the configuration's
// version.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	res, version, err := p.AddResult(args)
	if err != nil {
		return err
	}
	return types.PrintResult(res, version)
}

// AddResult is Add's work: the result, and the version to print it in.
func (p *Plugin) AddResult(args *skel.CmdArgs) (*current.Result, string, error) {
	res, conf, err := p.add(args)
	if err != nil {
		return nil, "", err
	}
	return res, conf.CNIVersion, nil
}

func (p *Plugin) add(args *skel.CmdArgs) (*current.Result, *NetConf, error) {
	at, err := load(args, false)
	if err != nil {
		return nil, nil, err
	}
	if at.netns == "" && !onWindows {
		return nil, nil, types.NewError(types.ErrInvalidNetNS, "vxnet: CNI_NETNS is empty: ADD needs the container's network namespace", "")
	}
	ctx, cancel := p.ctx()
	defer cancel()
	req, err := at.endpointRequest()
	if err != nil {
		return nil, nil, err
	}
	agent := p.Dial(at.conf.Socket)
	n, created, err := ensureNetwork(ctx, agent, at.conf)
	if err != nil {
		return nil, nil, err
	}
	ep, err := agent.CreateEndpoint(ctx, req)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotFound && ae.Field == "network" {
		// Removed meanwhile (another ADD that made it failed): again.
		if n, created, err = ensureNetwork(ctx, agent, at.conf); err != nil {
			return nil, nil, err
		}
		ep, err = agent.CreateEndpoint(ctx, req)
	}
	if errors.As(err, &ae) && ae.Code == api.CodeConflict && ae.Field == "name" {
		// ADD again for the same attachment (a runtime that retries):
		// the endpoint is the one made before, if it is this one's.
		old, ok, ferr := at.find(ctx, agent, true)
		switch {
		case ferr != nil:
			err = ferr
		case ok:
			ep, err = old, nil
		default:
			err = types.NewError(types.ErrInternal, fmt.Sprintf("vxnet: endpoint name %q is another container's on network %q: %s", req.Name, req.Network, ae.Message), "")
		}
	}
	if err != nil {
		var cerr *types.Error
		if !errors.As(err, &cerr) {
			cerr = fromAPI(err, "creating the endpoint").(*types.Error)
		}
		if created && errors.As(err, &ae) && ae.Code == api.CodeBadRequest {
			// The network this ADD made goes with a failure of the
			// configuration's: it is tried afresh next time. Another
			// container's endpoint, made meanwhile, keeps it.
			if rerr := agent.RemoveNetwork(ctx, n.Name); rerr != nil {
				cerr.Details = strings.TrimPrefix(cerr.Details+"; network "+n.Name+", which this ADD made, stays: "+rerr.Error(), "; ")
			}
		}
		return nil, nil, cerr
	}
	res, err := result(at, n, ep)
	if err != nil {
		return nil, nil, err
	}
	return res, at.conf, nil
}

func (at *attachment) endpointRequest() (api.EndpointCreate, error) {
	req := api.EndpointCreate{Network: at.conf.Network, Name: at.endpointName(), Netns: at.netns, Ifname: at.ifname, MTU: at.conf.MTU,
		Labels: map[string]string{LabelContainer: at.container, LabelIfname: at.ifname, LabelNetName: at.conf.Name}}
	if onWindows {
		// An HNS endpoint, which the agent attaches to the pod's HNS
		// namespace (CNI_NETNS there).
		req.Netns, req.Ifname, req.HNSNamespace = "", "", at.netns
	}
	if err := names.Endpoint(req.Name); err != nil {
		return req, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("vxnet: no endpoint name can be made of container %q: %v", at.container, err), "")
	}
	if at.pod != "" {
		req.Labels[LabelPod] = at.pod
	}
	if at.ns != "" {
		req.Labels[LabelNamespace] = at.ns
	}
	rc := at.conf.RuntimeConfig
	if rc.Mac != "" {
		hw, _ := net.ParseMAC(rc.Mac) // checked by ParseConf
		req.MAC = hw.String()
	} else if at.argMAC != "" {
		hw, err := net.ParseMAC(at.argMAC)
		if err != nil || len(hw) != 6 {
			return req, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("vxnet: CNI_ARGS MAC=%q is not a MAC address: want six hex bytes, such as 02:42:0a:00:09:07", at.argMAC), "")
		}
		req.MAC = hw.String()
	}
	ips, field := rc.IPs, "runtimeConfig.ips"
	if len(ips) == 0 && at.argIPs != "" {
		ips, field = strings.Split(at.argIPs, ","), "CNI_ARGS IP"
		for _, s := range ips {
			if _, err := parseIP(s); err != nil {
				return req, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("vxnet: CNI_ARGS IP=%q: %q is not an IP address (want such as 10.0.9.7 or fd00:9::7, with or without /prefix; a comma between two)", at.argIPs, s), "")
			}
		}
	}
	for _, pm := range rc.PortMappings {
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		// One mapping per family (hostIP 0.0.0.0 and ::) is one publish.
		if spec := fmt.Sprintf("%d:%d/%s", pm.HostPort, pm.ContainerPort, proto); !slices.Contains(req.Publish, spec) {
			req.Publish = append(req.Publish, spec)
		}
	}
	for _, s := range ips {
		a, _ := parseIP(s) // checked by ParseConf or above
		switch {
		case a.Is4() && req.IP == "":
			req.IP = a.String()
		case a.Is6() && req.IP6 == "":
			req.IP6 = a.String()
		default:
			return req, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxnet: %s: one address per family; %s is a second", field, s), "")
		}
	}
	for _, alias := range rc.Aliases[at.conf.Name] {
		a := labelOf(alias)
		// Web and web, my_app and my-app: one label, given once.
		if names.Alias(a) == nil && !names.Same(a, req.Name) && !slices.ContainsFunc(req.Aliases, func(x string) bool { return names.Same(x, a) }) {
			req.Aliases = append(req.Aliases, a)
		}
	}
	return req, nil
}

// find returns this host's endpoint of this attachment (in its namespace
// too, with sameNetns), if the agent has it.
func (at *attachment) find(ctx context.Context, agent Agent, sameNetns bool) (api.Endpoint, bool, error) {
	self, err := selfName(ctx, agent)
	if err != nil {
		return api.Endpoint{}, false, err
	}
	eps, err := agent.Endpoints(ctx)
	if err != nil {
		return api.Endpoint{}, false, fromAPI(err, "listing endpoints")
	}
	for _, e := range eps {
		if e.Host == self && e.Network == at.conf.Network && e.Labels[LabelContainer] == at.container && e.Labels[LabelIfname] == at.ifname &&
			(!sameNetns || onWindows || e.Netns == at.netns) {
			return e, true, nil
		}
	}
	return api.Endpoint{}, false, nil
}

// ensureNetwork returns the vxnet network the configuration names,
// creating it on its first use; one made elsewhere must agree with the
// configuration.
func ensureNetwork(ctx context.Context, agent Agent, c *NetConf) (n api.Network, created bool, err error) {
	n, err = agent.Network(ctx, c.Network)
	if err == nil {
		return n, false, agrees(n, c)
	}
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		return n, false, fromAPI(err, "reading network "+c.Network)
	}
	n, err = agent.CreateNetwork(ctx, c.request())
	if errors.As(err, &ae) && ae.Code == api.CodeConflict && ae.Field == "name" {
		// Being made at the same moment, here or on another host
		// (another container's ADD): it appears within moments.
		for {
			if n, nerr := agent.Network(ctx, c.Network); nerr == nil {
				return n, false, agrees(n, c)
			}
			select {
			case <-ctx.Done():
				return n, false, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("vxnet: network %q is being created elsewhere and did not appear in time", c.Network), err.Error())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err != nil {
		return n, false, fromAPI(err, "creating network "+c.Network)
	}
	return n, true, nil
}

// agrees checks the configuration against the network it found.
func agrees(n api.Network, c *NetConf) error {
	differ := func(field, have, want string) error {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("vxnet: network %q exists with %s %q; this configuration asks for %q (vxnet network inspect %s)", n.Name, field, have, want, n.Name), "")
	}
	driver := c.Driver
	if driver == "" {
		driver = "overlay"
	}
	switch {
	case n.Driver != driver:
		return differ("driver", n.Driver, driver)
	case c.Subnet != "" && !samePrefix(n.Subnet, c.Subnet):
		return differ("subnet", n.Subnet, c.Subnet)
	case c.Subnet6 != "" && !samePrefix(n.Subnet6, c.Subnet6):
		return differ("subnet6", n.Subnet6, c.Subnet6)
	case c.Gateway != "" && !sameAddr(n.Gateway, c.Gateway):
		return differ("gateway", n.Gateway, c.Gateway)
	case c.IPRange != "" && !samePrefix(n.IPRange, c.IPRange):
		return differ("ipRange", n.IPRange, c.IPRange)
	case c.Internal != n.Internal:
		return differ("internal", fmt.Sprint(n.Internal), fmt.Sprint(c.Internal))
	}
	// Each option the configuration gives must be the network's (an
	// encrypted network asked for is never met by a plain one); an
	// option absent from the network is its default, false for a flag.
	for _, k := range slices.Sorted(maps.Keys(c.Options)) {
		have, ok := n.Options[k]
		want := c.Options[k]
		if ok && api.OptionValue(have) == api.OptionValue(want) || !ok && want == "false" {
			continue
		}
		if !ok {
			have = "(not set)"
		}
		return differ("options."+k, have, want)
	}
	return nil
}

// result is the CNI result of an endpoint.
func result(at *attachment, n api.Network, ep api.Endpoint) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	res.Interfaces = []*current.Interface{{Name: at.ifname, Mac: ep.MAC, Sandbox: at.netns}}
	idx := 0
	var gw4, gw6 netip.Addr
	if n.Egress { // the way out; an internal network has none
		// An IPv6-only network's one gateway, in ContainerGateway, is IPv6.
		for _, s := range []string{n.ContainerGateway, n.ContainerGateway6} {
			if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
				gw4 = a
			} else if err == nil {
				gw6 = a
			}
		}
	}
	for _, s := range ep.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, types.NewError(types.ErrInternal, fmt.Sprintf("vxnet: the agent gave address %q", s), "")
		}
		ipc := &current.IPConfig{Interface: &idx, Address: net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if gw4.IsValid() && p.Addr().Is4() {
			ipc.Gateway = gw4.AsSlice()
		}
		if gw6.IsValid() && p.Addr().Is6() {
			ipc.Gateway = gw6.AsSlice()
		}
		res.IPs = append(res.IPs, ipc)
	}
	if gw4.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw4.AsSlice()})
	}
	if gw6.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: gw6.AsSlice()})
	}
	// vxnet's resolver answers in every endpoint's namespace.
	res.DNS = types.DNS{Nameservers: []string{"127.0.0.11"}, Search: []string{n.Name}}
	return res, nil
}

// Del detaches the container. Idempotent: an attachment, endpoint or
// namespace already gone is not an error.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	at, err := load(args, true)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	agent := p.Dial(at.conf.Socket)
	ep, ok, err := at.find(ctx, agent, false)
	if err != nil {
		return err // the agent is not there: the runtime retries DEL
	}
	if !ok {
		return nil
	}
	if err := agent.RemoveEndpoint(ctx, ep.Network, ep.Name); err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
			return nil
		}
		return fromAPI(err, "removing endpoint "+ep.Name)
	}
	return nil
}

// Check verifies that the attachment's endpoint exists, in service, in
// the namespace the runtime says, and that the namespace does.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	at, err := load(args, true)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	agent := p.Dial(at.conf.Socket)
	ep, ok, err := at.find(ctx, agent, false)
	switch {
	case err != nil:
		return err
	case !ok:
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("vxnet: no endpoint of container %s (%s) on network %q", at.container, at.ifname, at.conf.Network), "")
	case ep.State != "":
		return types.NewError(types.ErrInternal, fmt.Sprintf("vxnet: endpoint %s is %s: %s", ep.Name, ep.State, ep.Reason), "")
	case !onWindows && at.netns != "" && ep.Netns != at.netns:
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("vxnet: endpoint %s is in namespace %q, not %q", ep.Name, ep.Netns, at.netns), "")
	}
	if at.netns != "" && !onWindows {
		if _, err := os.Stat(at.netns); err != nil {
			return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("vxnet: namespace %s: %v", at.netns, err), "")
		}
	}
	return checkPrev(at.conf, ep)
}

// checkPrev checks the endpoint against the result ADD gave the runtime
// (prevResult, which CHECK receives): the same addresses.
func checkPrev(conf *NetConf, ep api.Endpoint) error {
	if conf.RawPrevResult == nil {
		return nil
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "vxnet: prevResult: "+err.Error(), "")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "vxnet: prevResult: "+err.Error(), "")
	}
	have := map[netip.Addr]bool{}
	for _, s := range ep.Addresses {
		if p, err := netip.ParsePrefix(s); err == nil {
			have[p.Addr()] = true
		}
	}
	for _, ipc := range prev.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if ok && !have[a.Unmap()] {
			return types.NewError(types.ErrInternal, fmt.Sprintf("vxnet: endpoint %s no longer has %s, which ADD gave (it has %s): delete and add the container again", ep.Name, a.Unmap(), strings.Join(ep.Addresses, ", ")), "")
		}
	}
	return nil
}

// GC removes this host's endpoints of the network that the plugin made for
// attachments the runtime no longer has.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := ParseConfLoose(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	agent := p.Dial(conf.Socket)
	valid := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[a.ContainerID+"/"+a.IfName] = true
	}
	self, err := selfName(ctx, agent)
	if err != nil {
		return err
	}
	eps, err := agent.Endpoints(ctx)
	if err != nil {
		return fromAPI(err, "listing endpoints")
	}
	var errs []string
	for _, e := range eps {
		id, ok := e.Labels[LabelContainer]
		if !ok || e.Host != self || e.Network != conf.Network || e.Labels[LabelNetName] != conf.Name || valid[id+"/"+e.Labels[LabelIfname]] {
			continue
		}
		if err := agent.RemoveEndpoint(ctx, e.Network, e.Name); err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
				errs = append(errs, e.Name+": "+err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return types.NewError(types.ErrTryAgainLater, "vxnet: GC could not remove every stale endpoint", strings.Join(errs, "; "))
	}
	return nil
}

// Status says whether the agent answers.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := ParseConfLoose(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	if _, err := selfName(ctx, p.Dial(conf.Socket)); err != nil {
		return types.NewError(errPluginNotAvailable, "vxnet: the agent does not answer on "+conf.Socket, err.Error())
	}
	return nil
}

// selfName is the agent's host name.
func selfName(ctx context.Context, agent Agent) (string, error) {
	ms, err := agent.Members(ctx)
	if err != nil {
		return "", fromAPI(err, "asking the agent")
	}
	for _, m := range ms {
		if m.Self {
			return m.Name, nil
		}
	}
	return "", types.NewError(types.ErrInternal, "vxnet: the agent does not list itself among the cluster's members", "")
}

// fromAPI turns an agent error into a CNI error: the agent unreachable
// is "try again later", a refused request an invalid configuration (it
// names the field), anything else internal.
func fromAPI(err error, doing string) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		code := uint(types.ErrInternal)
		switch ae.Code {
		case api.CodeBadRequest:
			code = types.ErrInvalidNetworkConfig
		case api.CodeConflict, api.CodeBusy:
			code = types.ErrTryAgainLater
			if ae.Code == api.CodeConflict && (ae.Field == "aliases" || ae.Field == "ip" || ae.Field == "ip6") {
				// Another endpoint's name or address, or an address in
				// another host's block: no retry helps.
				code = types.ErrInvalidNetworkConfig
			}
		case api.CodeNotFound:
			code = types.ErrInvalidNetworkConfig
		}
		msg := "vxnet: " + doing + ": " + ae.Message
		if ae.Field != "" {
			msg += " (field " + ae.Field + ")"
		}
		return types.NewError(code, msg, "")
	}
	return types.NewError(types.ErrTryAgainLater, "vxnet: "+doing+": the agent does not answer", err.Error()) // the details say where and what to check
}

// Versions are the CNI spec versions the plugin speaks.
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Main serves the CNI call the runtime made (CNI_COMMAND and the rest in
// the environment, the configuration on stdin) against the agent at the
// configuration's socket, and exits.
func Main() {
	p := &Plugin{Dial: func(socket string) Agent { return api.NewClient(socket) }}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status},
		Versions, "vxnet CNI plugin: a client of the local vxnet agent")
}

// samePrefix and sameAddr compare the agent's text with a configuration's,
// which may be written otherwise (upper case, zeros).
func samePrefix(a, b string) bool {
	pa, ea := netip.ParsePrefix(a)
	pb, eb := netip.ParsePrefix(b)
	return ea == nil && eb == nil && pa == pb
}

func sameAddr(a, b string) bool {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	return ea == nil && eb == nil && pa == pb
}
