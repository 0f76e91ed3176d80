package agent

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/vxnet/vxnet/api"
)

// Networks are the cluster's: a row per creation in tableNetworks (key
// name/creator), kept whatever happens to the creator, removed only by
// network rm (from any host). Two creations of one name exist only when
// they were made where neither could see the other (both sides of a
// partition, or at the same moment): every host then shows the one that
// IPAM's claims also pick, the earlier (Created, Creator), and the loser's
// creator withdraws its row; endpoints it addressed in the loser's subnet
// lose those addresses (IPAM reports them) and are readdressed.

// networkKey is the tableNetworks key of one creation of a network.
func networkKey(name, creator string) string { return name + "/" + creator }

// earlierNetwork orders two creations of one name the way IPAM orders
// their subnet claims.
func earlierNetwork(a, b api.Network) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Creator < b.Creator
}

// pickNetworks returns, per name, the creation that wins.
func pickNetworks(rows []api.Network) map[string]api.Network {
	out := map[string]api.Network{}
	for _, n := range rows {
		if w, ok := out[n.Name]; !ok || earlierNetwork(n, w) {
			out[n.Name] = n
		}
	}
	return out
}

// decodeNetwork reads a tableNetworks row; ok is false for a row that does
// not decode or does not match its key.
func decodeNetwork(key string, value []byte) (api.Network, bool) {
	var n api.Network
	if json.Unmarshal(value, &n) != nil || key != networkKey(n.Name, n.Creator) {
		return api.Network{}, false
	}
	return n, true
}

// networkRows decodes every creation in the table.
func (a *Agent) networkRows() []api.Network {
	var out []api.Network
	for _, e := range a.kv.List(tableNetworks) {
		if n, ok := decodeNetwork(e.Key, e.Value); ok {
			out = append(out, n)
		}
	}
	return out
}

// network returns the winning creation of a name, as IPAM sees it now.
func (a *Agent) network(name string) (api.Network, bool) {
	var rows []api.Network
	for _, n := range a.networkRows() {
		if n.Name == name {
			rows = append(rows, n)
		}
	}
	n, ok := pickNetworks(rows)[name]
	if !ok {
		return api.Network{}, false
	}
	return a.current(n), true
}

// Networks lists every network (the winning creation of each name).
func (a *Agent) Networks() []api.Network {
	byName := pickNetworks(a.networkRows())
	out := make([]api.Network, 0, len(byName))
	for _, name := range sortedMapKeys(byName) {
		out = append(out, a.current(byName[name]))
	}
	return out
}

// current is n with the subnet and gateway IPAM holds for it now: an
// automatic subnet moves when it lost an overlap to an earlier claim.
func (a *Agent) current(n api.Network) api.Network {
	if a.ipam == nil { // an agent without IPAM, in tests
		return n
	}
	creator, created, ok := a.ipam.Creation(n.Name)
	if !ok || creator != n.Creator || !created.Equal(n.Created) {
		return n
	}
	if p, ok := a.ipam.Subnet(n.Name); ok {
		n.Subnet = p.String()
	}
	if gw, ok := a.ipam.Gateway(n.Name); ok && gw.IsValid() {
		n.Gateway = gw.String()
	}
	return n
}

// applyNetworkLocked follows one change of tableNetworks. a.mu is held.
func (a *Agent) applyNetworkLocked(key string, value []byte, gone bool) {
	name, _, _ := strings.Cut(key, "/")
	if gone {
		delete(a.creations, key)
	} else if n, ok := decodeNetwork(key, value); ok {
		a.creations[key] = n
	} else {
		a.log.Warn("ignoring a malformed network row", "key", key)
		return
	}
	var rows []api.Network
	for _, n := range a.creations {
		if n.Name == name { // decodeNetwork checked the key is name/creator
			rows = append(rows, n)
		}
	}
	if w, ok := pickNetworks(rows)[name]; ok {
		a.networks[name] = w
	} else {
		delete(a.networks, name)
	}
}

// losingCreationsLocked lists this host's creations that lost to an
// earlier creation of the same name. a.mu is held.
func (a *Agent) losingCreationsLocked() []string {
	var out []string
	for key, n := range a.creations {
		if n.Creator != a.cfg.Name {
			continue
		}
		if w := a.networks[n.Name]; w.Creator != n.Creator || !w.Created.Equal(n.Created) {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// withdrawLosingNetworks removes this host's losing creations: the name
// is the winner's, and the loser must not come back when it is removed.
func (a *Agent) withdrawLosingNetworks() {
	a.mu.Lock()
	keys := a.losingCreationsLocked()
	winners := make([]string, len(keys))
	for i, k := range keys {
		n := a.creations[k]
		winners[i] = a.networks[n.Name].Creator
	}
	a.mu.Unlock()
	for i, k := range keys {
		name, _, _ := strings.Cut(k, "/")
		a.log.Warn("a network created here lost to an earlier creation of the same name on another host; withdrawing this one (its endpoints here move to the winner)",
			"network", name, "winner", winners[i])
		if err := a.kv.Delete(tableNetworks, k); err != nil {
			a.log.Warn("withdrawing a losing network", "network", name, "error", err)
		}
	}
}

// moveClashingVNIs gives a new VNI to each network that shares its VNI
// with a network earlier by name (created on both sides of a partition):
// the switch serves only the first until then. The loser's creator writes
// the change, or, when it is not a live member, the live member first by
// name: every host computes the same.
func (a *Agent) moveClashingVNIs() {
	a.mu.Lock()
	var losers []api.Network
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
	live := map[string]bool{}
	first := ""
	for _, m := range a.kv.Node().Members() {
		live[m.Name] = true
		if first == "" || m.Name < first {
			first = m.Name
		}
	}
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
		e, ok := a.kv.Get(tableNetworks, networkKey(n.Name, n.Creator))
		if !ok {
			continue
		}
		if cur, ok := decodeNetwork(e.Key, e.Value); !ok || cur.VNI != n.VNI {
			continue
		}
		old := n.VNI
		n.VNI = a.pickVNI(n.Name)
		a.log.Warn("two networks share a VNI; moving this one", "network", n.Name, "vni", n.VNI, "previous", old, "winner", winner[old])
		if err := a.putRow(tableNetworks, networkKey(n.Name, n.Creator), n); err != nil {
			a.log.Error("writing network row", "network", n.Name, "error", err)
		}
	}
}
