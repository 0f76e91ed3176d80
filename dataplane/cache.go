package dataplane

// lookupCache remembers a packet loop's last table lookups within one
// batch: the packets of a burst mostly share a VNI and a destination, and
// a hit costs a comparison instead of a hash probe. It is reset at every
// batch, because the table may change between batches.
type lookupCache struct {
	vni    uint32
	net    *network
	hostOf *network
	dst    addrKey
	hit    *host
}

func (c *lookupCache) network(t *Table, vni uint32) *network {
	if c.net == nil || c.vni != vni {
		c.vni, c.net = vni, t.vnis.get(vni)
	}
	return c.net
}

func (c *lookupCache) host(n *network, dst addrKey) *host {
	if c.hostOf != n || c.dst != dst {
		c.hostOf, c.dst, c.hit = n, dst, n.hosts.get(dst)
	}
	return c.hit
}
