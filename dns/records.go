package dns

import (
	"net/netip"

	mdns "github.com/miekg/dns"
)

// Records is a snapshot of the names the server answers for. The server
// calls Lookup once per query, from many goroutines at once, so an
// implementation is immutable (like Table) or otherwise safe for concurrent
// reads; Lookup must not block, allocate needlessly, or retain name or dst
// after it returns.
//
// Scope is the implementation's business: for a local-scope network it
// returns only this host's endpoints.
type Records interface {
	// Lookup appends to dst the record sets of type qtype that name (lower
	// case, fully qualified, e.g. "api.") has on each of networks, and
	// reports whether name exists on any of them, with any type. exists
	// with no sets appended is a NODATA answer. The sets are shared and
	// read-only.
	Lookup(networks []string, name string, qtype uint16, dst []*RRSet) (sets []*RRSet, exists bool)
	// Network describes the network called name, or reports false.
	Network(name string) (Network, bool)
}

// Scope says which endpoints of a network a host's DNS answers for.
// Append-only: the values may be stored by the control plane.
type Scope uint8

const (
	// ScopeLocal answers with the endpoints on this host only.
	ScopeLocal Scope = iota
	// ScopeGlobal answers with the endpoints of the whole cluster.
	ScopeGlobal
)

// String implements fmt.Stringer.
func (s Scope) String() string {
	switch s {
	case ScopeLocal:
		return "local"
	case ScopeGlobal:
		return "global"
	}
	return "scope(" + itoa(int(s)) + ")"
}

// Network is a network as DNS sees it.
type Network struct {
	Name     string // lower-case DNS label(s), e.g. "web"
	Scope    Scope
	Internal bool // no outside connectivity: names are never forwarded
	// VIPs are the virtual IPs of the network's services in vip mode, by
	// service name: the name answers with them (the endpoints that
	// joined answer under tasks.NAME), with or without endpoints.
	VIPs map[string][]netip.Addr
}

// Port is a named service port, published as SRV _Name._Proto.<service>.
type Port struct {
	Name  string // e.g. "http"
	Proto string // "tcp" or "udp"
	Port  uint16
}

// Endpoint is one container attachment as DNS sees it.
type Endpoint struct {
	Name    string       // container name on the network
	Aliases []string     // more names for the same addresses
	Service string       // service the endpoint belongs to, "" for none
	Network string       // name of the network it is attached to
	Addrs   []netip.Addr // its addresses on that network
	Local   bool         // the endpoint runs on this host
	Ports   []Port       // SRV ports, under Service (or Name without one)
}

// RRSet is an immutable answer: resource records of one type for one
// owner name, pre-packed for the wire so that answering is a copy.
type RRSet struct {
	// RRs are the records as built (owner names as the table spells them).
	RRs []mdns.RR
	// Shuffle asks for a new random order in every answer (round robin).
	Shuffle bool

	wire  []byte   // the RRs packed, each owner a pointer to the question name
	offs  []uint16 // start of RR i in wire is offs[i]; offs[len(RRs)] == len(wire)
	extra []byte   // additional-section records, packed with full owner names
	nx    int      // number of records in extra
}

// questionPtr is a compression pointer to the question name, which starts
// right after the 12-byte header in every message the server writes.
var questionPtr = [2]byte{0xC0, headerLen}

// NewRRSet packs rrs (all answering the question they will be given for;
// their owner names are replaced by a pointer to it) and extra, the
// additional-section records sent with them when they fit.
func NewRRSet(rrs, extra []mdns.RR, shuffle bool) (*RRSet, error) {
	s := &RRSet{RRs: rrs, Shuffle: shuffle, offs: make([]uint16, 0, len(rrs)+1)}
	buf := make([]byte, maxMsgLen)
	for i, rr := range rrs {
		n, err := mdns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, &FieldError{Field: "rrs[" + itoa(i) + "]", Value: rr.String(), Err: err}
		}
		nameLen := packedNameLen(buf[:n])
		if len(s.wire)+2+n-nameLen > maxMsgLen {
			return nil, &FieldError{Field: "rrs", Value: itoa(len(rrs)) + " records", Err: ErrTooLarge}
		}
		s.offs = append(s.offs, uint16(len(s.wire)))
		s.wire = append(s.wire, questionPtr[:]...)
		s.wire = append(s.wire, buf[nameLen:n]...)
	}
	s.offs = append(s.offs, uint16(len(s.wire)))
	for i, rr := range extra {
		n, err := mdns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, &FieldError{Field: "extra[" + itoa(i) + "]", Value: rr.String(), Err: err}
		}
		s.extra = append(s.extra, buf[:n]...)
	}
	s.nx = len(extra)
	return s, nil
}

// Len is the number of answer records.
func (s *RRSet) Len() int { return len(s.offs) - 1 }

// packedNameLen is the length of the uncompressed name at the start of b.
func packedNameLen(b []byte) int {
	i := 0
	for i < len(b) && b[i] != 0 {
		i += int(b[i]) + 1
	}
	return i + 1
}
