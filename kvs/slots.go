package kvs

// Slot-level changes for a backend that holds the authoritative copy
// elsewhere (etcd): the store is then a cache of that copy, kept by
// replacing slots as they are, with readers and watchers served as for
// gossip.

// setSlot stores e in its owner's slot unless the slot already holds the
// same write (same version and value). Reports whether it changed.
func (s *store) setSlot(e Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setSlotLocked(e)
}

func (s *store) setSlotLocked(e Entry) bool {
	if old := s.slots[slotKey{e.Table, e.Key, e.Owner}]; old != nil && sameWrite(old, &e) {
		return false
	}
	s.setLocked(e)
	s.stats.Applied++
	return true
}

func sameWrite(a, b *Entry) bool {
	return a.Version == b.Version && a.Claim == b.Claim && a.Deleted == b.Deleted && string(a.Value) == string(b.Value)
}

// dropSlot removes one owner's slot of a row, telling watchers what
// readers see change. Reports whether there was one.
func (s *store) dropSlot(sk slotKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropSlotLocked(sk)
}

func (s *store) dropSlotLocked(sk slotKey) bool {
	if s.slots[sk] == nil {
		return false
	}
	s.changeLocked([]rowKey{{sk.table, sk.key}}, func() { s.unslotLocked(sk) })
	s.stats.Applied++
	return true
}

// replaceAll makes the store hold exactly entries (one per slot): slots
// not among them go, the others are set. Watchers see only what changed.
func (s *store) replaceAll(entries []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[slotKey]bool, len(entries))
	for _, e := range entries {
		keep[slotKey{e.Table, e.Key, e.Owner}] = true
	}
	var gone []slotKey
	for sk := range s.slots {
		if !keep[sk] {
			gone = append(gone, sk)
		}
	}
	for _, sk := range gone {
		s.dropSlotLocked(sk)
	}
	for _, e := range entries {
		s.setSlotLocked(e)
	}
}

// hasSlot reports whether the store holds a live slot.
func (s *store) hasSlot(sk slotKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.slots[sk]
	return e != nil && !e.Deleted
}
