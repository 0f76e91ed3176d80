// Package tables holds the rows the agents keep in the replicated store
// (package kvs): networks and endpoints. Each row has a Go type, decoded
// once when the row arrives and checked then, and a wire form, versioned,
// that the hosts gossip and the state file keeps. The agent's API shows
// the same things in types of its own (package api): an API change is not
// a change of what hosts say to each other.
//
// The wire form is JSON. A row carries its format's version ("v"); a host
// reads every version up to its own and leaves out, with an error naming
// the version, a row a newer vxnet wrote in a format it does not know.
// Rows without "v" are version 1.
package tables

import (
	"fmt"
	"net/netip"
)

// Names of the tables in the replicated store.
const (
	// Networks is a cluster table: a network is the cluster's, not its
	// creator's. Key: name/creator, one row per creation of a name.
	Networks = "networks"
	// Endpoints is host-scoped, first claim wins: key network/name,
	// written by the endpoint's host.
	Endpoints = "endpoints"
)

// Version is the newest row format this build reads. It writes version 1,
// but for a network row with an IPv6 subnet beside its IPv4 one
// (versionDualStack): a host that knows only version 1 refuses that row,
// naming the version, rather than serving half of the network.
const Version = versionDualStack

const versionDualStack = 2

// RowError is a row that does not decode or does not check out: it names
// the table, the key, the field and the value.
type RowError struct {
	Table, Key, Field, Value, Reason string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s row %q: %s", e.Table, e.Key, e.Reason)
	}
	return fmt.Sprintf("%s row %q: %s %q: %s", e.Table, e.Key, e.Field, e.Value, e.Reason)
}

// checkVersion refuses a row of a format newer than this build's.
func checkVersion(table, key string, v int) error {
	if v > Version {
		return &RowError{table, key, "v", fmt.Sprint(v), fmt.Sprintf("written by a newer vxnet (this one reads up to %d): upgrade this host", Version)}
	}
	return nil
}

// parseAddr reads an address that may be absent ("", or the text of a
// zero address that an older writer put there).
func parseAddr(s string) (netip.Addr, bool) {
	if s == "" || s == "invalid IP" {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// addrText is the wire text of an address that may be absent.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
