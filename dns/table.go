package dns

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// DefaultTTL is the TTL of every answer, in seconds, when NewTable gets 0.
// Short, so that clients never hold a stale `tasks.` answer for long after
// churn (Docker's 600 s does: moby#47728).
const DefaultTTL = 10

// Table is the immutable in-memory Records: every name indexed by its
// lower-case FQDN, every answer pre-packed. Build a new one on each change
// and hand it to Server.SetRecords; never modify one in use.
//
// For an endpoint E (name, aliases) with service S on network N it holds:
//
//	E.  E.N.              A, AAAA   E's addresses
//	S.  S.N.              A, AAAA   every endpoint of S, shuffled per answer
//	tasks.S.  tasks.S.N.  A, AAAA   every endpoint of S, in address order
//	_P._tcp.S.  (and .N.) SRV       0 0 port E.N. per endpoint, glue in additional
//	reverse(addr)         PTR       E.N.
//
// A name on several networks of a view answers with the union of its
// records on those networks. On a local-scope network only this host's
// endpoints (Endpoint.Local) are indexed.
type Table struct {
	names    map[string]*nameEntry
	networks map[string]Network
}

var _ Records = (*Table)(nil)

// record kinds a table holds, in nameEntry.nets[i].sets order.
const (
	kindA = iota
	kindAAAA
	kindPTR
	kindSRV
	kindANY // A and AAAA together
	numKinds
)

func kindOf(qtype uint16) int {
	switch qtype {
	case mdns.TypeA:
		return kindA
	case mdns.TypeAAAA:
		return kindAAAA
	case mdns.TypePTR:
		return kindPTR
	case mdns.TypeSRV:
		return kindSRV
	case mdns.TypeANY:
		return kindANY
	}
	return -1
}

type nameEntry struct {
	nets []netSets
}

type netSets struct {
	network string
	sets    [numKinds]*RRSet
}

// Lookup implements Records.
func (t *Table) Lookup(networks []string, name string, qtype uint16, dst []*RRSet) ([]*RRSet, bool) {
	e := t.names[name]
	if e == nil {
		return dst, false
	}
	k := kindOf(qtype)
	exists := false
	for i := range e.nets {
		ns := &e.nets[i]
		if !slices.Contains(networks, ns.network) {
			continue
		}
		exists = true
		if k >= 0 && ns.sets[k] != nil {
			dst = append(dst, ns.sets[k])
		}
	}
	return dst, exists
}

// Network implements Records.
func (t *Table) Network(name string) (Network, bool) {
	n, ok := t.networks[name]
	return n, ok
}

// Len is the number of names indexed.
func (t *Table) Len() int { return len(t.names) }

// acc accumulates one name's records on one network while building.
type acc struct {
	addrs   []netip.Addr
	ptrs    []string
	srvs    []srvTarget
	shuffle bool
}

type srvTarget struct {
	target string
	port   uint16
	addrs  []netip.Addr
}

type builder struct {
	ttl   uint32
	names map[string]map[string]*acc // name -> network -> records
}

func (b *builder) at(name, network string) *acc {
	m := b.names[name]
	if m == nil {
		m = map[string]*acc{}
		b.names[name] = m
	}
	a := m[network]
	if a == nil {
		a = &acc{}
		m[network] = a
	}
	return a
}

// addAddrs indexes name and name.network.
func (b *builder) addAddrs(name, network string, addrs []netip.Addr, shuffle bool) {
	for _, n := range []string{name + ".", name + "." + network + "."} {
		a := b.at(n, network)
		a.addrs = append(a.addrs, addrs...)
		a.shuffle = a.shuffle || shuffle
	}
}

// NewTable indexes networks and endpoints. Names are case-insensitive and
// stored in lower case; ttl 0 means DefaultTTL.
//
// A network or an endpoint that fails a check is left out, and the rest
// is indexed: one bad row (from an older version, a bad peer) never stops
// a table. So is the second of two networks whose names differ only in
// case (they are one name), with its endpoints, and a record set too large
// for a DNS message. The table is never nil; err, when not nil, joins one
// *RowError per row left out, each naming the row, the field and the value.
func NewTable(networks []Network, endpoints []Endpoint, ttl uint32) (*Table, error) {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	t := &Table{names: map[string]*nameEntry{}, networks: map[string]Network{}}
	var errs []error
	leftOut := map[string]bool{} // networks left out: their endpoints go quietly
	given := map[string]string{} // network names as given, by lower-case name
	for _, n := range networks {
		row := "network " + strconv.Quote(n.Name)
		name, err := checkName("name", n.Name)
		if err != nil {
			errs = append(errs, &RowError{Row: row, Err: err})
			leftOut[n.Name] = true
			continue
		}
		if first, dup := given[name]; dup {
			if first != n.Name {
				errs = append(errs, &RowError{Row: row, Err: &FieldError{Field: "name", Value: n.Name, Err: ErrDuplicate}})
				leftOut[n.Name] = true
			}
			continue
		}
		given[name] = n.Name
		n.Name = name
		t.networks[name] = n
	}
	b := &builder{ttl: ttl, names: map[string]map[string]*acc{}}
	for _, name := range slices.Sorted(maps.Keys(t.networks)) {
		n := t.networks[name]
		given := n.VIPs
		n.VIPs = map[string][]netip.Addr{} // by lower-case name, as endpoints' services are looked up
		for _, svc := range slices.Sorted(maps.Keys(given)) {
			owner, err := checkName("vips", svc)
			if err != nil {
				errs = append(errs, &RowError{Row: "network " + strconv.Quote(n.Name), Err: err})
				continue
			}
			var vips []netip.Addr
			for _, a := range given[svc] {
				if a.IsValid() {
					vips = append(vips, a.Unmap())
				}
			}
			n.VIPs[owner] = vips
			b.addAddrs(owner, name, vips, false)
			// tasks.NAME exists while the service does, its endpoints or
			// none (NODATA, never forwarded).
			b.addAddrs("tasks."+owner, name, nil, false)
		}
		t.networks[name] = n
	}
	for _, e := range endpoints {
		if leftOut[e.Network] {
			continue
		}
		if err := b.addEndpoint(t, e); err != nil {
			errs = append(errs, &RowError{Row: "endpoint " + strconv.Quote(e.Name) + " on network " + strconv.Quote(e.Network), Err: err})
		}
	}
	errs = append(errs, b.finish(t)...)
	return t, errors.Join(errs...)
}

// RowError is a row NewTable left out, and why.
type RowError struct {
	Row string // `network "web"`, `endpoint "api" on network "web"`, `name "api." on network "web"`
	Err error  // a *FieldError naming the field (within the row) and the value
}

// Error implements error.
func (e *RowError) Error() string {
	return "dns: " + e.Row + " left out: " + strings.TrimPrefix(e.Err.Error(), "dns: ")
}

// Unwrap returns the FieldError.
func (e *RowError) Unwrap() error { return e.Err }

func (b *builder) addEndpoint(t *Table, e Endpoint) error {
	netName := strings.ToLower(e.Network)
	nw, ok := t.networks[netName]
	if !ok {
		return &FieldError{Field: "network", Value: e.Network, Err: ErrUnknownNetwork}
	}
	names, addrs, owner, err := checkEndpoint(e)
	if err != nil {
		return err
	}
	if nw.Scope == ScopeLocal && !e.Local {
		return nil // a local-scope network never shows other hosts' endpoints
	}
	for _, n := range names {
		b.addAddrs(n, netName, addrs, false)
	}
	target := names[0] + "." + netName + "."
	for _, a := range addrs {
		rev, _ := mdns.ReverseAddr(a.String())
		p := b.at(rev, netName)
		p.ptrs = append(p.ptrs, target)
	}
	if e.Service != "" {
		if _, vip := nw.VIPs[owner]; !vip {
			// dnsrr: the name answers with the endpoints, round robin.
			b.addAddrs(owner, netName, addrs, true)
		}
		b.addAddrs("tasks."+owner, netName, addrs, false)
	}
	for _, p := range e.Ports {
		pname, proto := strings.ToLower(p.Name), strings.ToLower(p.Proto)
		for _, n := range []string{"_" + pname + "._" + proto + "." + owner + ".", "_" + pname + "._" + proto + "." + owner + "." + netName + "."} {
			s := b.at(n, netName)
			s.srvs = append(s.srvs, srvTarget{target: target, port: p.Port, addrs: addrs})
		}
	}
	return nil
}

// checkEndpoint validates e and returns its names (name first, then
// aliases), its addresses (IPv4-mapped ones as IPv4) and the owner of its
// SRV records (its service, or its name without one). Errors name the
// field within the endpoint.
func checkEndpoint(e Endpoint) (names []string, addrs []netip.Addr, owner string, err error) {
	name, err := checkName("name", e.Name)
	if err != nil {
		return nil, nil, "", err
	}
	names = []string{name}
	for j, al := range e.Aliases {
		al, err := checkName("aliases["+itoa(j)+"]", al)
		if err != nil {
			return nil, nil, "", err
		}
		names = append(names, al)
	}
	for j, a := range e.Addrs {
		if !a.IsValid() {
			return nil, nil, "", &FieldError{Field: "addrs[" + itoa(j) + "]", Value: a.String(), Err: ErrBadName}
		}
		addrs = append(addrs, a.Unmap())
	}
	owner = name
	if e.Service != "" {
		if owner, err = checkName("service", e.Service); err != nil {
			return nil, nil, "", err
		}
	}
	for j, p := range e.Ports {
		pf := "ports[" + itoa(j) + "]"
		if _, err := checkName(pf+".name", p.Name); err != nil {
			return nil, nil, "", err
		}
		if strings.Contains(p.Name, ".") {
			return nil, nil, "", &FieldError{Field: pf + ".name", Value: p.Name, Err: ErrBadName}
		}
		if proto := strings.ToLower(p.Proto); proto != "tcp" && proto != "udp" {
			return nil, nil, "", &FieldError{Field: pf + ".proto", Value: p.Proto, Err: ErrBadName}
		}
	}
	return names, addrs, owner, nil
}

// finish packs every accumulated name into RRSets. A record set that
// does not pack is left out and reported.
func (b *builder) finish(t *Table) []error {
	var errs []error
	for name, byNet := range b.names {
		e := &nameEntry{}
		for network, a := range byNet {
			ns := netSets{network: network}
			errs = append(errs, b.pack(&ns, name, a)...)
			e.nets = append(e.nets, ns)
		}
		slices.SortFunc(e.nets, func(x, y netSets) int { return strings.Compare(x.network, y.network) })
		t.names[name] = e
	}
	return errs
}

func (b *builder) pack(ns *netSets, name string, a *acc) []error {
	slices.SortFunc(a.addrs, netip.Addr.Compare)
	a.addrs = slices.Compact(a.addrs)
	var v4, v6, all []mdns.RR
	for _, ip := range a.addrs {
		rr := addrRR(name, ip, b.ttl)
		if ip.Is4() {
			v4 = append(v4, rr)
		} else {
			v6 = append(v6, rr)
		}
	}
	all = append(append(all, v4...), v6...)
	var ptrs, srvs, glue []mdns.RR
	var errs []error
	slices.Sort(a.ptrs)
	for _, p := range slices.Compact(a.ptrs) {
		ptrs = append(ptrs, &mdns.PTR{Hdr: hdr(name, mdns.TypePTR, b.ttl), Ptr: p})
	}
	for _, s := range a.srvs {
		srvs = append(srvs, &mdns.SRV{Hdr: hdr(name, mdns.TypeSRV, b.ttl), Port: s.port, Target: s.target})
		for _, ip := range s.addrs {
			glue = append(glue, addrRR(s.target, ip, b.ttl))
		}
	}
	for k, rrs := range [numKinds][]mdns.RR{kindA: v4, kindAAAA: v6, kindPTR: ptrs, kindSRV: srvs, kindANY: all} {
		if len(rrs) == 0 {
			continue
		}
		var extra []mdns.RR
		if k == kindSRV {
			extra = glue
		}
		set, err := NewRRSet(rrs, extra, a.shuffle || k == kindSRV)
		if err != nil {
			errs = append(errs, &RowError{Row: "name " + strconv.Quote(name) + " on network " + strconv.Quote(ns.network),
				Err: &FieldError{Field: kindNames[k], Value: itoa(len(rrs)) + " records", Err: err}})
			continue
		}
		ns.sets[k] = set
	}
	return errs
}

// kindNames name the record kinds in errors.
var kindNames = [numKinds]string{kindA: "A", kindAAAA: "AAAA", kindPTR: "PTR", kindSRV: "SRV", kindANY: "ANY"}

func hdr(name string, t uint16, ttl uint32) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
}

func addrRR(name string, ip netip.Addr, ttl uint32) mdns.RR {
	if ip.Is4() {
		return &mdns.A{Hdr: hdr(name, mdns.TypeA, ttl), A: ip.AsSlice()}
	}
	return &mdns.AAAA{Hdr: hdr(name, mdns.TypeAAAA, ttl), AAAA: ip.AsSlice()}
}

// checkName lower-cases s and checks it is a relative DNS name of plain
// labels ([a-z0-9_-], 1-63 bytes each, at most 253 in all).
func checkName(field, s string) (string, error) {
	n := strings.ToLower(s)
	ok := n != "" && len(n) <= 253
	for _, l := range strings.Split(n, ".") {
		if !ok {
			break
		}
		ok = len(l) >= 1 && len(l) <= 63
		for i := 0; ok && i < len(l); i++ {
			c := l[i]
			ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		}
	}
	if !ok {
		return "", &FieldError{Field: field, Value: s, Err: ErrBadName}
	}
	return n, nil
}
