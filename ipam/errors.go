package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

var (
	// ErrExhausted: no free address (or subnet) is left.
	ErrExhausted = errors.New("no free address left")
	// ErrOverlap: a subnet overlaps one already in use.
	ErrOverlap = errors.New("overlaps a subnet in use")
	// ErrOutOfRange: an address outside the subnet or range.
	ErrOutOfRange = errors.New("outside the subnet")
	// ErrInvalid: a value that does not parse.
	ErrInvalid = errors.New("invalid")
	// ErrInUse: a static address that is already allocated or reserved.
	ErrInUse = errors.New("already in use")
	// ErrOtherHost: a static address of a global network in an address
	// block another host holds: free, maybe, but not this host's to give.
	ErrOtherHost = errors.New("in another host's address block")
	// ErrNotAllocated: releasing an address that is not allocated.
	ErrNotAllocated = errors.New("not allocated")
)

// Error names the network, the field and the value at fault; it unwraps to
// one of the sentinels above.
type Error struct {
	Network string // the network's name
	Field   string // "subnet", "ip-range", "gateway", "aux-address", "address"
	Value   string
	Err     error
	Detail  string // optional, e.g. the other network of an overlap
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ipam: network %q: %s %q: %v", e.Network, e.Field, e.Value, e.Err)
	if e.Network == "" { // a check before the network has a name
		s = fmt.Sprintf("ipam: %s %q: %v", e.Field, e.Value, e.Err)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// otherHostErr refuses static address a of network: it lies in block, which
// host holds.
func otherHostErr(network string, a netip.Addr, block netip.Prefix, host string) error {
	return &Error{Network: network, Field: "address", Value: a.String(), Err: ErrOtherHost,
		Detail: fmt.Sprintf("each host gives the addresses of the blocks it holds, and %v is host %s's: create it on that host, or pick an address in a block this host holds (vxnet network inspect lists the blocks and their holders)", block, host)}
}
