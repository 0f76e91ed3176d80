package agent

import (
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// Formats are the versions of what this build says to other hosts and
// keeps on disk, for `vxnet version`.
type Formats struct {
	RowsRead  int // the newest table row format read
	RowsWrite int // the format written (the newest only for a row that needs it)
	Gossip    int // the replicated tables' gossip messages
	State     int // the state file
	Etcd      int // the key layout in etcd
}

// BuildFormats returns this build's Formats.
func BuildFormats() Formats {
	return Formats{RowsRead: tables.Version, RowsWrite: 1, Gossip: kvs.WireVersion, State: hoststate.StateVersion, Etcd: kvs.EtcdFormat}
}
