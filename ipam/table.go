package ipam

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vxnet/vxnet/internal/names"
)

// Table is the replicated table the global scope works over. Every host
// sees every row; a host writes only its own rows. The kvs gossip backend
// satisfies it through a small adapter in the agent; ipamtest has one in
// memory.
//
// For each key the table shows one row, the winner: the newest write
// (highest Version) among the rows of the hosts that are currently live.
// Implementations must be safe for concurrent use; Put and Delete must not
// block on the network.
type Table interface {
	// Self is this host's name, as Members and Row.Writer spell it.
	Self() string
	// Put writes, or replaces, this host's row at key.
	Put(key string, value []byte) error
	// Delete removes this host's row at key; no error if there is none.
	Delete(key string) error
	// List returns the winning row of every key that starts with prefix.
	List(prefix string) []Row
	// Members returns the live members, this host included.
	Members() []string
}

// Claimer is a Table whose store can take a row for this host atomically
// (etcd's compare-and-swap). Global then hands out blocks by claims: a
// host takes a free block with one claim, and no grant, request or heir
// protocol is needed to keep two hosts from holding one block.
type Claimer interface {
	Table
	// CanClaim reports whether the store takes claims (etcd does, gossip
	// does not).
	CanClaim() bool
	// Claim writes key as this host's row, with value, if no host holds
	// it (from == "") or if host from still holds it at version (a
	// takeover). It reports whether it won; a lost race is no error.
	Claim(key string, value []byte, from string, version uint64) (bool, error)
	// Unclaim deletes this host's row at key if it is still at version.
	Unclaim(key string, version uint64) (bool, error)
}

// Row is one winning row of a Table.
type Row struct {
	Key     string
	Value   []byte
	Writer  string // the host that wrote it
	Version uint64 // the writer's Lamport time: greater is newer everywhere
}

// SubnetKeyPrefix starts the keys of subnet claims. A Table must keep these
// rows in sight whether or not their writer is live: a network's claim is
// the cluster's (the agent keeps them in a kvs cluster table).
const SubnetKeyPrefix = keySubnet

// Keys of the global scope's rows. A network name never contains '/'.
const (
	keySubnet = "subnet/" // + network/writer/created: the network's claim, by its creator; deletions by any host
	keyBlock  = "block/"  // + network/index/writer: who holds a block, by the holder, its granter or its heir
	keyHost   = "host/"   // + network/host: a host's want and spare blocks, by that host
	keyClaim  = "claim/"  // + network/index: who holds a block, claimed atomically (a Claimer's store only)
)

// BlockClaimKeyPrefix starts the keys of block claims (a Claimer's
// store): like subnet claims they stay in sight whether or not their
// writer is live, until their holder gives them back or an heir takes
// them over.
const BlockClaimKeyPrefix = keyClaim

func claimKey(network string, idx uint64) string {
	return keyClaim + network + "/" + strconv.FormatUint(idx, 10)
}

// subnetClaim is the value of a subnet row. Creator, Created and Rev are
// set by the creator: the claim with the greatest Rev of a creation is the
// current one, and of two creations (of one name, or overlapping subnets)
// the earlier (Created, Creator) wins.
type subnetClaim struct {
	Creator   string            `json:"creator"`
	Created   int64             `json:"created"` // the creator's clock, Unix ns
	Rev       uint64            `json:"rev"`
	Deleted   bool              `json:"deleted,omitempty"`
	Subnet    string            `json:"subnet"`
	IPRange   string            `json:"ipRange,omitempty"`
	Gateway   string            `json:"gateway,omitempty"`
	Aux       map[string]string `json:"aux,omitempty"`
	BlockBits int               `json:"blockBits"`         // host bits of one block
	Auto      bool              `json:"auto,omitempty"`    // picked from the default pools: may move on conflict
	OneHost   bool              `json:"oneHost,omitempty"` // only the creator's endpoints use it: no other host takes blocks
}

// blockGrant is the value of a block row: the block's holder, the era
// (0, or when an heir took the block over: its clock, Unix ns) and how
// many times the block has changed hands in the era. Grants compare by
// (Era, Gen, Holder): an inheritance beats every grant the heir could not
// see, since those were written before the holder went away.
type blockGrant struct {
	Holder string `json:"holder"`
	Era    int64  `json:"era,omitempty"`
	Gen    uint64 `json:"gen"`
}

func (b blockGrant) after(o blockGrant) bool {
	if b.Era != o.Era {
		return b.Era > o.Era
	}
	if b.Gen != o.Gen {
		return b.Gen > o.Gen
	}
	return b.Holder > o.Holder
}

// hostState is the value of a host row: how many blocks the host wants to
// hold in all (a request while it holds fewer), the request's sequence,
// and how many blocks it could give away.
type hostState struct {
	Want  int    `json:"want"`
	Seq   uint64 `json:"seq"`
	Spare int    `json:"spare"`
	// Waiting: an address is asked for on the host and its blocks have
	// none free (a need, not a block fetched ahead): a host that holds
	// none then gets even the empty block another keeps for itself.
	Waiting bool `json:"waiting,omitempty"`
}

func subnetKey(network, writer string, created int64) string {
	return keySubnet + network + "/" + writer + "/" + strconv.FormatInt(created, 10)
}

func blockKey(network string, idx uint64, writer string) string {
	return keyBlock + network + "/" + strconv.FormatUint(idx, 10) + "/" + writer
}

func hostKey(network, host string) string { return keyHost + network + "/" + host }

// splitKey cuts "prefix" + network + "/" + rest.
func splitKey(key, prefix string) (network, rest string, ok bool) {
	s, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", "", false
	}
	network, rest, ok = strings.Cut(s, "/")
	return network, rest, ok && network != ""
}

// decodeCachedLocked decodes a row's value, from the cache while the row's
// version and writer are unchanged.
func decodeCachedLocked[T any](g *Global, r Row) (T, error) {
	if c, ok := g.decoded[r.Key]; ok && c.version == r.Version && c.writer == r.Writer && r.Version != 0 {
		if v, ok := c.v.(T); ok {
			return v, c.err
		}
	}
	var v T
	err := decodeValue(r, &v)
	if len(g.decoded) > 1<<16 {
		clear(g.decoded)
	}
	g.decoded[r.Key] = cachedRow{r.Version, r.Writer, v, err}
	return v, err
}

type cachedRow struct {
	version uint64
	writer  string
	v       any
	err     error
}

func decodeValue(r Row, v any) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("ipam: row %s from %s: %w", r.Key, r.Writer, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}

// ValidNetworkName reports whether name can name a network: the API's
// rule (names.Network), which every later stage (DNS, HNS) accepts too,
// or such a name and V6Suffix (a dual-stack network's IPv6 side). Claims
// in the table under other names are ignored.
func ValidNetworkName(name string) bool {
	return names.Network(strings.TrimSuffix(name, V6Suffix)) == nil
}

// V6Suffix names the IPv6 side of a dual-stack network: network NAME's
// IPv6 subnet, blocks and leases are those of network NAME+V6Suffix (no
// network name holds '#').
const V6Suffix = "#6"

// blockOf returns the index of the block holding offset off.
func blockOf(off uint64, blockBits int) uint64 { return off >> blockBits }

// blockPrefix is block idx of rng as a prefix.
func blockPrefix(rng netip.Prefix, idx uint64, blockBits int) netip.Prefix {
	return netip.PrefixFrom(addShifted(rng.Addr(), idx, uint(blockBits)), rng.Addr().BitLen()-blockBits)
}
