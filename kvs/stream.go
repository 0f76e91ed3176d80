package kvs

// Every write has a place in its owner's stream: (epoch, seq). Nodes track
// how much of each stream they hold and swap that position (a version
// vector) with random peers, which send back what is missing. See doc.go.

// stampLocked places a write of this node in its stream.
func (s *store) stampLocked(e *Entry) {
	s.seq++
	e.Epoch, e.Seq = s.epoch, s.seq
	s.owners[s.self].have = s.seq
}

// markLocked records that a write of an owner's stream has been seen.
func (s *store) markLocked(o *owner, epoch, seq uint64) {
	if epoch == 0 || seq == 0 {
		return
	}
	switch {
	case epoch < o.epoch:
		return
	case epoch > o.epoch: // the owner restarted
		o.epoch, o.have, o.above = epoch, 0, nil
	}
	if seq <= o.have {
		return
	}
	if seq != o.have+1 {
		if o.above == nil {
			o.above = map[uint64]struct{}{}
		}
		o.above[seq] = struct{}{}
		return
	}
	o.have = seq
	o.advanceLocked()
}

func (o *owner) advanceLocked() {
	for {
		if _, ok := o.above[o.have+1]; !ok {
			break
		}
		delete(o.above, o.have+1)
		o.have++
	}
	for q := range o.above {
		if q <= o.have {
			delete(o.above, q)
		}
	}
}

// completeTo records a peer's claim that the rows it sent cover every
// write of the owner's stream from seq from+1 to n. The claim counts only
// if this node already held everything up to from in the same run (or the
// claim covers a newer run whole).
func (s *store) completeTo(name string, epoch, from, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == s.self || epoch == 0 || n == 0 {
		return
	}
	o := s.ownerLocked(name)
	switch {
	case o.status == ownerGone || epoch < o.epoch:
		return
	case epoch > o.epoch:
		if from != 0 {
			return
		}
		o.epoch, o.have, o.above = epoch, 0, nil
	case o.have < from:
		return
	}
	if n > o.have {
		o.have = n
		o.advanceLocked()
	}
}

// vector returns this node's position in the streams of the owners in
// this round's part: with more owners than fit in max, the owners are
// split by hash into parts that successive rounds cover in turn.
func (s *store) vector(round uint32, max int) (vectorPart, []vectorItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := 0
	for name, o := range s.owners {
		if name != s.self && o.status != ownerGone && o.epoch != 0 {
			known++
		}
	}
	// Parts leave room for an uneven hash split.
	parts := uint32(1)
	for int(parts)*max*3/4 < known {
		parts++
	}
	p := vectorPart{Part: round % parts, Parts: parts}
	var out []vectorItem
	for name, o := range s.owners {
		if name == s.self || o.status == ownerGone || o.epoch == 0 || !p.covers(o.hash) {
			continue
		}
		if len(out) == max {
			p.Cut = true
			break
		}
		out = append(out, vectorItem{OwnerHash: o.hash, EpochTag: uint16(o.epoch), Have: o.have})
	}
	return p, out
}

// catchUp is what a peer lacks of one owner's stream: the rows after seq
// from, which with what it holds cover the stream up to complete.
type catchUp struct {
	owner          string
	epoch          uint64
	from, complete uint64
	rows           []Entry
}

// behind compares a peer's vector with this node's streams and returns,
// per owner of the vector's part the peer lacks writes of, the rows that
// cover them. Owners of the part missing from a vector that was not cut
// short are unknown to the peer: sent whole. The peer's own stream is
// never sent back to it.
func (s *store) behind(peer string, p vectorPart, theirs []vectorItem) []catchUp {
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[uint32]vectorItem, len(theirs))
	for _, it := range theirs {
		listed[it.OwnerHash] = it
	}
	var out []catchUp
	for name, o := range s.owners {
		if o.status != ownerAlive || o.epoch == 0 || o.have == 0 || name == peer || !p.covers(o.hash) {
			continue
		}
		it, ok := listed[o.hash]
		if !ok && p.Cut {
			continue
		}
		c := catchUp{owner: name, epoch: o.epoch, complete: o.have}
		if ok && it.EpochTag == uint16(o.epoch) {
			if it.Have >= o.have {
				continue
			}
			c.from = it.Have
		}
		// Otherwise the peer knows another run of the owner, or none:
		// ours goes whole, and the peer keeps it only if it is newer.
		for sk := range o.slots {
			if e := s.slots[sk]; e.Epoch == o.epoch && e.Seq > c.from {
				c.rows = append(c.rows, *e)
			}
		}
		out = append(out, c)
	}
	return out
}
