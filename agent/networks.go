package agent

import (
	"context"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// Networks are the cluster's: a row per creation in the networks table
// (key name/creator), kept whatever happens to the creator, removed only
// by network rm (from any host). Two creations of one name exist only when
// they were made where neither could see the other (both sides of a
// partition, or at the same moment): every host then shows the one that
// IPAM's claims also pick, the earlier (Created, Creator), and the loser's
// creator withdraws its row; endpoints it addressed in the loser's subnet
// lose those addresses (IPAM reports them) and are readdressed.

// networkName is the name part of a networks table key.
func networkName(key string) string {
	name, _, _ := strings.Cut(key, "/")
	return name
}

// CreateNetwork creates a network: its subnet claimed cluster-wide, a VNI,
// and the row every host sees.
func (a *Agent) CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error) {
	d, own, opts, err := checkNetworkCreate(&req)
	if err != nil {
		return api.Network{}, err
	}
	members := a.Members()
	if err := a.checkNetworkInCluster(d, own, &req, members); err != nil {
		return api.Network{}, err
	}
	unclaim, err := a.claimNetworkName(req.Name) // names.go: unique in any case
	if err != nil {
		return api.Network{}, err
	}
	defer unclaim()
	aux4, aux6 := req.AuxAddresses, map[string]string(nil)
	if req.Subnet6 != "" {
		aux4, aux6 = splitAux(req.AuxAddresses)
	}
	pc := ipam.PoolConfig{Subnet: req.Subnet, IPRange: req.IPRange, Gateway: req.Gateway, AuxAddresses: aux4, OneHost: d.Scope() == driver.ScopeLocal}
	// Not cut short by a client that goes away: a claim left half made
	// would hold the name and the subnet.
	subnet, err := a.ipam.CreateNetwork(context.WithoutCancel(ctx), req.Name, pc, opts.BlockSize)
	if err != nil {
		return api.Network{}, fromIPAM(err)
	}
	gateway, _ := a.ipam.Gateway(req.Name)
	creator, created, ok := a.ipam.Creation(req.Name)
	if !ok || creator != a.cfg.Name {
		return api.Network{}, apiError(api.CodeConflict, "name", "network %q was created at the same time by host %s", req.Name, creator)
	}
	withdraw := func() {
		a.ipam.WithdrawOwn(req.Name)
		a.ipam.WithdrawOwn(req.Name + ipam.V6Suffix)
	}
	n := tables.Network{Name: req.Name, Driver: req.Driver, Scope: string(d.Scope()), VNI: a.pickVNI(req.Name), Subnet: subnet,
		Gateway: gateway, IPRange: req.IPRange, Internal: req.Internal, Options: req.Options, AssignedBy: req.AssignedBy, Creator: a.cfg.Name, Created: created}
	if req.Subnet6 != "" {
		pc6 := ipam.PoolConfig{Subnet: req.Subnet6, IPRange: req.IPRange6, Gateway: req.Gateway6, AuxAddresses: aux6, OneHost: pc.OneHost}
		if n.Subnet6, err = a.ipam.CreateNetworkAt(context.WithoutCancel(ctx), req.Name+ipam.V6Suffix, pc6, 0, created); err != nil {
			withdraw()
			return api.Network{}, fromIPAM(err)
		}
		n.Gateway6, _ = a.ipam.Gateway(req.Name + ipam.V6Suffix)
		n.IPRange6 = req.IPRange6
	}
	if err := underlayApart(d, req, n, members, a.hnsProg != nil, hostAddrs()); err != nil {
		withdraw()
		return api.Network{}, err
	}
	if err := a.put(tables.Networks, n.Key(), n.Encode()); err != nil {
		withdraw()
		return api.Network{}, err
	}
	a.persist()
	a.log.Info("network created", "network", n.Name, "vni", n.VNI, "subnet", n.Subnet.String())
	return a.apiNetwork(n), nil
}

// checkNetworkInCluster checks a request against the driver and the
// cluster (its members, its gossip), and keeps the members' addresses out
// of a network on their segment (keepMembersOut, which adds to req).
func (a *Agent) checkNetworkInCluster(d driver.Driver, own map[string]string, req *api.NetworkCreate, members []api.Member) error {
	if err := driver.Check(d, own); err != nil {
		return apiError(api.CodeBadRequest, "options", "%v", err)
	}
	if err := rowRoom("a network's", field{"options", req.Options}, field{"auxAddresses", req.AuxAddresses}); err != nil {
		return err
	}
	if err := checkPolicyHost(d, own, members); err != nil {
		return err
	}
	if driver.Encrypted(own) && !a.gossipEncrypted {
		// The keys that seal the network travel in gossip: without the
		// cluster's gossip key anyone on the underlay could announce some.
		return apiError(api.CodeBadRequest, "options", "option encrypted: needs an encrypted cluster: start every agent with --gossip-key-file FILE (the same key on each; docs/ENCRYPTION.md)")
	}
	return keepMembersOut(d, req, members)
}

// checkNetworkCreate checks what can be checked of a request alone, and
// returns the driver, its own options and IPAM's.
func checkNetworkCreate(req *api.NetworkCreate) (driver.Driver, map[string]string, ipam.Options, error) {
	return checkNetworkRequest(req, true)
}

// checkNetworkRequest is checkNetworkCreate, the name left out unless
// named (a runtime may check a network before it knows its name).
func checkNetworkRequest(req *api.NetworkCreate, named bool) (driver.Driver, map[string]string, ipam.Options, error) {
	if req.Driver == "" {
		req.Driver = driver.Default
	}
	if err := names.Network(req.Name); err != nil && named {
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "name", "%v", err)
	}
	d, err := driver.Get(req.Driver)
	if err != nil {
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "driver", "%v", err)
	}
	if d.NeedsSubnet() && req.Subnet == "" {
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "subnet", "a %s network needs --subnet: the physical segment's subnet (and --gateway, its router; --ip-range keeps vxnet's addresses clear of the segment's other machines)", req.Driver)
	}
	switch {
	case req.AssignedBy != "" && req.AssignedBy != api.AssignedBySwarm:
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "assignedBy", "assignedBy %q: want empty (vxnet hands out the addresses) or %q", req.AssignedBy, api.AssignedBySwarm)
	case req.AssignedBy != "" && d.Scope() == driver.ScopeLocal:
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "driver", "a %s network is one host's; a network whose addresses %s assigns spans hosts: pick overlay, transparent, l2bridge or l2tunnel", req.Driver, req.AssignedBy)
	case req.AssignedBy != "" && req.Subnet == "":
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "subnet", "a network whose addresses %s assigns needs --subnet: the one it assigns them from", req.AssignedBy)
	case req.AssignedBy != "" && d.LeasesByDHCP(plan.DriverNetwork(tables.Network{Driver: req.Driver, Options: req.Options})):
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "assignedBy", "a %s network whose addresses come from the segment's DHCP server cannot have them assigned by %s", req.Driver, req.AssignedBy)
	}
	if err := checkDualStack(req, req.Driver); err != nil {
		return nil, nil, ipam.Options{}, err
	}
	if p, err := netip.ParsePrefix(req.Subnet); err == nil && p.Addr().Is6() && d.LeasesByDHCP(plan.DriverNetwork(tables.Network{Driver: req.Driver, Options: req.Options})) {
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "options", "option dhcp=true: vxnet's DHCP client speaks DHCPv4, and subnet %s is IPv6: leave -o dhcp out (vxnet then hands out the addresses of --ip-range)", req.Subnet)
	}
	req.Options = maps.Clone(req.Options) // the caller's map stays as it was
	driver.NormalizeOptions(req.Options)
	own, rest := driver.SplitOptions(d, req.Options)
	var unknown []string
	for k := range rest {
		if _, ok := ipam.OptionKeys[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		ipamKeys := slices.Sorted(maps.Keys(ipam.OptionKeys))
		return nil, nil, ipam.Options{}, apiError(api.CodeBadRequest, "options", "option %q: unknown; the %s driver takes %s, and the address pool %s",
			unknown[0], d.Name(), strings.Join(driver.OptionKeys(d), ", "), strings.Join(ipamKeys, ", "))
	}
	opts, err := ipam.ParseOptions(req.Name, rest)
	if err != nil {
		return nil, nil, ipam.Options{}, fromIPAM(err)
	}
	return d, own, opts, nil
}

// pickVNI hashes the name into the VNIs HNS takes, stepping past VNIs of
// networks in sight: HNS overlays take 4096 and up, and only 16 bits of it
// (its RemoteSubnetRoute's IsolationId), so Windows hosts can join any
// network.
func (a *Agent) pickVNI(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	const lo, span = hns.MinVNI, hns.MaxOverlayVNI + 1 - hns.MinVNI
	v := lo + h.Sum32()%span
	a.mu.Lock()
	defer a.mu.Unlock()
	used := map[uint32]bool{}
	for _, n := range a.networks {
		used[n.VNI] = true
	}
	for used[v] {
		v = lo + (v-lo+1)%span
	}
	return v
}

// RemoveNetwork removes a network no endpoint uses, from any host: the
// network is the cluster's, and its creator may be gone.
func (a *Agent) RemoveNetwork(name string) error {
	if _, ok := a.network(name); !ok {
		_, _, claimed := a.ipam.Creation(name)
		_, _, claimed6 := a.ipam.Creation(name + ipam.V6Suffix)
		if claimed || claimed6 {
			// A subnet claim with no network row (a crash between the two
			// steps of a create or a remove): rm clears it.
			for _, side := range []string{name, name + ipam.V6Suffix} {
				if _, _, ok := a.ipam.Creation(side); !ok {
					continue
				}
				if err := a.ipam.DeleteNetwork(side); err != nil {
					return fromIPAM(err)
				}
			}
			a.log.Info("network removed (its subnet claim only)", "network", name)
			return nil
		}
		return apiError(api.CodeNotFound, "name", "no network %q", name)
	}
	if svcs := a.serviceUsers(name); len(svcs) > 0 {
		return apiError(api.CodeConflict, "name", "network %q has services: %s (remove them first: vxnet service rm)", name, strings.Join(svcs, ", "))
	}
	if users := a.networkUsers(name); len(users) > 0 {
		return apiError(api.CodeConflict, "name", "network %q has endpoints: %s (remove them first; those of a host that is down come back with it, and go when it has been gone the reap time, or now with vxnet cluster forget HOST if it will not come back)", name, strings.Join(users, ", "))
	}
	// The claim first: a crash in between leaves rows that name no claim,
	// which the next rm clears, never a claim nobody can see.
	for _, side := range []string{name, name + ipam.V6Suffix} {
		if _, _, ok := a.ipam.Creation(side); !ok && side != name {
			continue
		}
		if err := a.ipam.DeleteNetwork(side); err != nil {
			a.log.Warn("ipam: deleting network", "network", side, "error", err)
		}
	}
	// Every creation of the name, so that none takes the winner's place.
	a.mu.Lock()
	var keys []string
	for key, n := range a.creations {
		if n.Name == name {
			keys = append(keys, key)
		}
	}
	a.mu.Unlock()
	for _, key := range keys {
		if err := a.del(tables.Networks, key); err != nil {
			return err
		}
	}
	a.log.Info("network removed", "network", name)
	return nil
}

// networkUsers lists the endpoints of a network, those of hosts that are
// down too: they come back with their host.
func (a *Agent) networkUsers(name string) []string {
	var users []string
	a.mu.Lock()
	for _, e := range a.rows {
		if e.Network == name && !e.Mesh { // a mesh row goes with its network's services
			users = append(users, e.Name+" on "+e.Host)
		}
	}
	a.mu.Unlock()
	for _, e := range a.kv.Hidden(tables.Endpoints) {
		if ep, err := tables.DecodeEndpoint(e.Key, e.Owner, e.Value); err == nil && ep.Network == name && !ep.Mesh {
			users = append(users, ep.Name+" on "+e.Owner+" (host down)")
		}
	}
	sort.Strings(users)
	return users
}

// network returns the winning creation of a name, as IPAM sees it now.
func (a *Agent) network(name string) (tables.Network, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.networks[name]
	if !ok {
		return tables.Network{}, false
	}
	return a.current(n), true
}

// Networks lists every network (the winning creation of each name).
func (a *Agent) Networks() []api.Network {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]api.Network, 0, len(a.networks))
	for _, name := range sortedMapKeys(a.networks) {
		out = append(out, a.apiNetwork(a.current(a.networks[name])))
	}
	return out
}

// current is n with the subnet and gateway IPAM holds for it now: an
// automatic subnet moves when it lost an overlap to an earlier claim.
func (a *Agent) current(n tables.Network) tables.Network {
	if a.ipam == nil { // an agent without IPAM, in tests
		return n
	}
	creator, created, ok := a.ipam.Creation(n.Name)
	if !ok || creator != n.Creator || !created.Equal(n.Created) {
		return n
	}
	if p, ok := a.ipam.Subnet(n.Name); ok {
		n.Subnet = p
	}
	if gw, ok := a.ipam.Gateway(n.Name); ok && gw.IsValid() {
		n.Gateway = gw
	}
	if n.Subnet6.IsValid() && a.sidesMatch(n.Name) {
		if p, ok := a.ipam.Subnet(n.Name + ipam.V6Suffix); ok {
			n.Subnet6 = p
		}
		if gw, ok := a.ipam.Gateway(n.Name + ipam.V6Suffix); ok && gw.IsValid() {
			n.Gateway6 = gw
		}
	}
	return n
}

// apiNetwork is a network as the API shows it on this host.
func (a *Agent) apiNetwork(n tables.Network) api.Network {
	out := api.Network{Name: n.Name, Driver: n.Driver, Scope: n.Scope, VNI: n.VNI, Subnet: n.Subnet.String(), IPRange: n.IPRange,
		Internal: n.Internal, Options: n.Options, AssignedBy: n.AssignedBy, Creator: n.Creator, Created: n.Created}
	if a.cfg.MTU > 0 {
		out.MTU = plan.NetworkMTU(a.cfg.MTU, n.Options)
	}
	if n.Gateway.IsValid() {
		out.Gateway = n.Gateway.String()
	}
	if n.Subnet6.IsValid() {
		out.Subnet6 = n.Subnet6.String()
	}
	if n.Gateway6.IsValid() {
		out.Gateway6 = n.Gateway6.String()
	}
	out.IPRange6 = n.IPRange6
	if d, err := driver.Get(n.Driver); err == nil {
		out.Egress = d.Egress(plan.DriverNetwork(n))
		if n.Gateway.IsValid() && (out.Egress || plan.ClosedGateway(d, n)) {
			out.ContainerGateway = n.Gateway.String()
		}
		if n.Gateway6.IsValid() && out.Egress {
			out.ContainerGateway6 = n.Gateway6.String()
		}
	}
	return out
}

// losingCreationsLocked lists this host's creations that lost to an
// earlier creation of the same name, with the winners' creators. a.mu is
// held.
func (a *Agent) losingCreationsLocked() (keys, winners []string) {
	for _, key := range sortedMapKeys(a.creations) {
		n := a.creations[key]
		if n.Creator != a.cfg.Name {
			continue
		}
		if w := a.networks[n.Name]; w.Creator != n.Creator || !w.Created.Equal(n.Created) {
			keys, winners = append(keys, key), append(winners, w.Creator)
		}
	}
	return keys, winners
}

// withdrawLosingNetworks removes this host's losing creations: the name
// is the winner's, and the loser must not come back when it is removed.
func (a *Agent) withdrawLosingNetworks() {
	a.mu.Lock()
	keys, winners := a.losingCreationsLocked()
	a.mu.Unlock()
	for i, k := range keys {
		a.log.Warn("a network created here lost to an earlier creation of the same name on another host; withdrawing this one (its endpoints here move to the winner)",
			"network", networkName(k), "winner", winners[i])
		if err := a.del(tables.Networks, k); err != nil {
			a.log.Warn("withdrawing a losing network", "network", networkName(k), "error", err)
		}
		a.ipam.WithdrawOwn(networkName(k) + ipam.V6Suffix) // its IPv6 side, if dual stack
	}
}

// moveClashingVNIs gives a new VNI to each network that shares its VNI
// with a network earlier by name (created on both sides of a partition):
// the switch serves only the first until then. The loser's creator writes
// the change, or, when it is not a live member, the live member first by
// name: every host computes the same.
func (a *Agent) moveClashingVNIs() {
	a.mu.Lock()
	var losers []tables.Network
	winner := map[uint32]string{}
	for _, name := range sortedMapKeys(a.networks) {
		n := a.networks[name]
		if n.VNI == 0 {
			continue
		}
		if _, taken := winner[n.VNI]; taken {
			losers = append(losers, n)
			continue
		}
		winner[n.VNI] = n.Name
	}
	a.mu.Unlock()
	if len(losers) == 0 {
		return
	}
	first, live := a.liveMembers()
	for _, n := range losers {
		writer := n.Creator
		if !live[writer] {
			writer = first
		}
		if writer != a.cfg.Name {
			continue
		}
		// The row as the table has it now: never write back one removed
		// since the reconciler last looked.
		e, ok := a.kv.Get(tables.Networks, n.Key())
		if !ok {
			continue
		}
		if cur, err := tables.DecodeNetwork(e.Key, e.Value); err != nil || cur.VNI != n.VNI {
			continue
		}
		old := n.VNI
		n.VNI = a.pickVNI(n.Name)
		a.log.Warn("two networks share a VNI; moving this one", "network", n.Name, "vni", n.VNI, "previous", old, "winner", winner[old])
		if err := a.put(tables.Networks, n.Key(), n.Encode()); err != nil {
			a.log.Error("writing network row", "network", n.Name, "error", err)
		}
	}
}

// liveMembers are the live members, and the first of them by name.
func (a *Agent) liveMembers() (first string, live map[string]bool) {
	live = map[string]bool{}
	for _, m := range a.kv.Node().Members() {
		live[m.Name] = true
		if first == "" || m.Name < first {
			first = m.Name
		}
	}
	return first, live
}

// CheckNetwork checks a network create request without creating anything:
// what CreateNetwork would refuse of the request alone, and a subnet IPAM
// would refuse (one containers cannot use, or one overlapping another
// network's; the same subnet is the same network, made elsewhere). A
// request without a name is checked but for the name (a runtime may not
// know it yet).
func (a *Agent) CheckNetwork(req api.NetworkCreate) error {
	named := req.Name
	d, own, opts, err := checkNetworkRequest(&req, named != "")
	if err != nil {
		return err
	}
	members := a.Members()
	if err := a.checkNetworkInCluster(d, own, &req, members); err != nil {
		return err
	}
	// The subnets asked for, as the network would have them.
	var n tables.Network
	n.Subnet, _ = netip.ParsePrefix(req.Subnet)
	n.Subnet6, _ = netip.ParsePrefix(req.Subnet6)
	if err := underlayApart(d, req, n, members, a.hnsProg != nil, hostAddrs()); err != nil {
		return err
	}
	if req.AssignedBy != "" {
		return nil // the runtime's allocator hands out the addresses
	}
	// The subnets as IPAM will take them: usable by containers, and
	// overlapping no other network's (every network's subnet is claimed
	// cluster-wide, whatever its scope).
	aux4, aux6 := splitAux(req.AuxAddresses)
	for _, side := range []struct {
		suffix    string
		c         ipam.PoolConfig
		blockSize int
	}{
		{"", ipam.PoolConfig{Subnet: req.Subnet, IPRange: req.IPRange, Gateway: req.Gateway, AuxAddresses: aux4}, opts.BlockSize},
		{ipam.V6Suffix, ipam.PoolConfig{Subnet: req.Subnet6, IPRange: req.IPRange6, Gateway: req.Gateway6, AuxAddresses: aux6}, 0},
	} {
		if side.c.Subnet == "" {
			continue
		}
		// Unnamed (Docker's create): errors name no network, and no
		// existing network is taken for this one.
		if err := a.ipam.CheckNetwork(named+side.suffix, side.c, side.blockSize); err != nil {
			return fromIPAM(err)
		}
	}
	return nil
}

// checkPolicyHost refuses an l2tunnel network whose policy host is no
// live member's underlay address: every packet of the network goes there,
// so none would arrive.
func checkPolicyHost(d driver.Driver, own map[string]string, members []api.Member) error {
	if d.Name() != "l2tunnel" {
		return nil
	}
	host, _, err := driver.L2TunnelPolicy(own) // checked by driver.Check
	if err != nil {
		return nil
	}
	var vteps []string
	for _, m := range members {
		if m.VTEP == host.String() {
			return nil
		}
		vteps = append(vteps, m.Name+" "+m.VTEP)
	}
	return apiError(api.CodeBadRequest, "options", "option policy-host=%s: no member of the cluster has that underlay address (members: %s), and every packet of the network would go there: start the policy host's agent first, or name a member's", host, strings.Join(vteps, ", "))
}

// underlayApart refuses a network whose subnet holds a member's
// underlay address: each host with endpoints on it would hold the
// network's gateway, or route the subnet to its containers, and lose its
// way to that member. Networks on a host's own segment (transparent,
// l2bridge; with HNS, any with an uplink) share its subnet by design.
func underlayApart(d driver.Driver, req api.NetworkCreate, n tables.Network, members []api.Member, hns bool, local []hostAddr) error {
	if d.Name() == "transparent" || d.Name() == "l2bridge" || hns && req.Options["uplink"] != "" {
		return nil // on a host's segment (with HNS, an l2tunnel with an uplink too)
	}
	// This host's own addresses (its IPv6 LAN, another bridge's network):
	// the other hosts' are known by their underlay address alone.
	for _, h := range local {
		for _, side := range []struct {
			field, asked string
			subnet       netip.Prefix
		}{{"subnet", req.Subnet, n.Subnet}, {"subnet6", req.Subnet6, n.Subnet6}} {
			if side.subnet.IsValid() && side.subnet.Contains(h.addr) {
				what := side.field + " " + strconv.Quote(side.asked)
				if side.asked == "" {
					what = "the subnet the default address pools gave, " + side.subnet.String() + ","
				}
				return apiError(api.CodeConflict, side.field, "%s holds %s, an address of this host's interface %s: the host would lose its way there; give a subnet apart from the hosts' networks", what, h.addr, h.ifname)
			}
		}
	}
	for _, m := range members {
		vtep, err := netip.ParseAddr(m.VTEP)
		if err != nil {
			continue
		}
		for _, side := range []struct {
			field, asked string
			subnet       netip.Prefix
		}{{"subnet", req.Subnet, n.Subnet}, {"subnet6", req.Subnet6, n.Subnet6}} {
			if !side.subnet.IsValid() || !side.subnet.Contains(vtep.Unmap()) {
				continue
			}
			if side.asked == "" {
				return apiError(api.CodeConflict, side.field, "the default address pools gave network %q subnet %v, which holds member %s's underlay address %s: give it a subnet apart from the hosts' network (--subnet)", n.Name, side.subnet, m.Name, vtep)
			}
			return apiError(api.CodeBadRequest, side.field, "%s %q holds member %s's underlay address %s: the hosts would lose their way to each other; give a subnet apart from the hosts' network", side.field, side.asked, m.Name, vtep)
		}
	}
	return nil
}

// keepMembersOut keeps the hosts' own addresses out of a network on their
// segment (transparent, l2bridge): a member's underlay address in its
// subnet becomes an aux address, host-NAME, never handed out, and a
// default gateway (the subnet's first address) that is one is refused.
// Hosts that join later are not known here: give such a network an
// --ip-range apart from the hosts.
func keepMembersOut(d driver.Driver, req *api.NetworkCreate, members []api.Member) error {
	if d.Name() != "transparent" && d.Name() != "l2bridge" {
		return nil
	}
	if v, ok := req.Options["dhcp"]; ok && api.OptionValue(v) == "true" {
		return nil // the segment's DHCP server hands out its addresses
	}
	for _, side := range []struct{ subnet, gateway, field string }{{req.Subnet, req.Gateway, "gateway"}, {req.Subnet6, req.Gateway6, "gateway6"}} {
		p, err := netip.ParsePrefix(side.subnet)
		if err != nil {
			continue // checked by IPAM, naming the field
		}
		p = p.Masked()
		for _, m := range members {
			vtep, err := netip.ParseAddr(m.VTEP)
			if vtep = vtep.Unmap(); err != nil || !p.Contains(vtep) {
				continue
			}
			if side.gateway == "" && vtep == p.Addr().Next() {
				return apiError(api.CodeBadRequest, side.field, "the default gateway %v (the subnet's first address) is member %s's underlay address: give the segment's router with --gateway", vtep, m.Name)
			}
			if gw, err := netip.ParseAddr(side.gateway); err == nil && gw.Unmap() == vtep || slices.Contains(slices.Collect(maps.Values(req.AuxAddresses)), vtep.String()) {
				continue // the user's own choice
			}
			if req.AuxAddresses == nil {
				req.AuxAddresses = map[string]string{}
			}
			req.AuxAddresses["host-"+m.Name] = vtep.String()
		}
	}
	return nil
}

// hostAddr is an address of one of this host's interfaces.
type hostAddr struct {
	ifname string
	addr   netip.Addr
}

// hostAddrs lists this host's interface addresses that a network's subnet
// must not hold: all but loopback and link-local ones, and those of
// vxnet's own gateway devices (the networks' gateways: a subnet that holds
// one is that network's, which IPAM tells apart).
func hostAddrs() []hostAddr {
	addrs, _ := config.InterfaceAddrs() // none known: nothing to check
	var out []hostAddr
	for _, ia := range addrs {
		if hostsOwn(ia) {
			out = append(out, hostAddr{ia.Iface.Name, ia.Addr})
		}
	}
	return out
}

// hostsOwn reports whether ia is one of the host's own addresses a
// network must keep apart from: not loopback, link-local or unspecified,
// and not on one of vxnet's gateway devices.
func hostsOwn(ia config.IfaceAddr) bool {
	a := ia.Addr
	return !strings.HasPrefix(ia.Iface.Name, hostnet.GatewayPrefix) && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified()
}

// avoidForSubnets is what a subnet from the default address pools must
// not overlap (ipam.GlobalConfig.Avoid), as Docker steers its pools around
// the host's networks and routes: the networks of this host's interfaces
// (its LANs, other runtimes' bridges, as hostsOwn picks them; an address
// whose prefix length is unknown, alone), the destinations of its routes
// (hostnet.RoutedNetworks: a VPN's, a static route's) and the underlay
// address of every member known now. The network's routes would shadow
// them.
func (a *Agent) avoidForSubnets() []netip.Prefix {
	addrs, _ := config.InterfaceAddrs()
	var out []netip.Prefix
	for _, ia := range addrs {
		if !hostsOwn(ia) {
			continue
		}
		p := ia.Network()
		if !p.IsValid() {
			p = netip.PrefixFrom(ia.Addr, ia.Addr.BitLen())
		}
		out = append(out, p)
	}
	routed, _ := hostnet.RoutedNetworks() // none known: nothing more to avoid
	out = append(out, routed...)
	for _, m := range a.Members() {
		if v, err := netip.ParseAddr(m.VTEP); err == nil {
			v = v.Unmap()
			out = append(out, netip.PrefixFrom(v, v.BitLen()))
		}
	}
	return out
}
