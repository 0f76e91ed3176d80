package kvs

import (
	"encoding/binary"
	"fmt"
)

// Wire format of kvs messages (inside memberlist's own framing and
// encryption). Every integer is a uvarint unless said otherwise; a string
// or byte field is a uvarint length and the bytes.
//
//	message = magic(1 byte 0xB7) type(1 byte) body
//	update  = count entry*                                  (forwarding)
//	digest  = sender count (owner rows hash(8 bytes LE))*   (push/pull)
//	rows    = sender owner epoch from complete count entry*      (repair)
//	vector  = sender part parts flags(1 byte, bit 0 = cut short) count (ownerhash(4 bytes LE) epochtag(2 bytes LE) have)*   (sync)
//	entry   = table key owner version epoch seq flags(1 byte, bit 0 = tombstone, bit 1 = claim) [deletedat] [claim] value
//	          (deletedat, Unix nanoseconds, only on tombstones; claim, a Lamport time, only with bit 1)
//
// A vector covers the owners whose hash modulo parts is part; it lists all
// the sender knows there unless marked cut short.
//
// In rows, complete > 0 claims that the rows sent cover every write of
// owner's stream epoch from seq from+1 up to seq complete; 0 claims nothing.
// Counters (versions, seqs, epochs) above maxCounter are malformed, so that
// no peer can push a Lamport clock to wrap.
//
// Message types are append-only.
const (
	magic = 0xB7
	// WireVersion names this message format (magic 0xB7, message types
	// 1-4) for `vxnet version`: a change nodes of the previous release
	// cannot read gets a new magic and a new version.
	WireVersion = 1

	msgUpdate byte = 1
	msgDigest byte = 2
	msgRows   byte = 3
	msgVector byte = 4
)

// Entry flags. Append-only.
const (
	flagTombstone byte = 1 << 0
	flagClaim     byte = 1 << 1
)

// Limits on what a message may carry; anything larger is malformed.
const (
	MaxNameLen     = 255     // table and owner names
	MaxKeyLen      = 1024    // keys
	MaxValueLen    = 1 << 16 // values
	MaxMessageSize = 8 << 20 // whole messages
	maxCounter     = 1 << 62
	repairChunk    = 256 << 10
	minEntryLen    = 8 // three empty strings, version, epoch, seq, flags, empty value
	digestItemLen  = 10
	vectorItemLen  = 7
)

// ownerDigest summarises one owner's rows for anti-entropy.
type ownerDigest struct {
	Owner string
	Rows  uint64 // rows held, tombstones included
	Hash  uint64 // XOR of the rows' hashes
}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }

func (e *encoder) entry(x *Entry) {
	e.str(x.Table)
	e.str(x.Key)
	e.str(x.Owner)
	e.uvarint(x.Version)
	e.uvarint(x.Epoch)
	e.uvarint(x.Seq)
	var flags byte
	if x.Deleted {
		flags |= flagTombstone
	}
	if x.Claim != 0 {
		flags |= flagClaim
	}
	e.b = append(e.b, flags)
	if x.Deleted {
		e.uvarint(uint64(x.DeletedAt))
	}
	if x.Claim != 0 {
		e.uvarint(x.Claim)
	}
	e.bytes(x.Value)
}

func encodeUpdate(entries []Entry) []byte {
	e := encoder{b: []byte{magic, msgUpdate}}
	e.uvarint(uint64(len(entries)))
	for i := range entries {
		e.entry(&entries[i])
	}
	return e.b
}

func encodeDigest(sender string, ds []ownerDigest) []byte {
	e := encoder{b: []byte{magic, msgDigest}}
	e.str(sender)
	e.uvarint(uint64(len(ds)))
	for _, d := range ds {
		e.str(d.Owner)
		e.uvarint(d.Rows)
		e.b = binary.LittleEndian.AppendUint64(e.b, d.Hash)
	}
	return e.b
}

// vectorItem is one owner's position in a sync vector.
type vectorItem struct {
	OwnerHash uint32 // ownerHash of the owner's name
	EpochTag  uint16 // the low bits of the owner's epoch: tells runs apart
	Have      uint64 // every write up to this seq is held
}

// vectorPart says which owners a vector covers.
type vectorPart struct {
	Part, Parts uint32 // owners with ownerHash % Parts == Part
	Cut         bool   // not every such owner is listed
}

func (p vectorPart) covers(hash uint32) bool { return p.Parts <= 1 || hash%p.Parts == p.Part }

func encodeVector(sender string, p vectorPart, items []vectorItem) []byte {
	e := encoder{b: []byte{magic, msgVector}}
	e.str(sender)
	e.uvarint(uint64(p.Part))
	e.uvarint(uint64(p.Parts))
	if p.Cut {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
	e.uvarint(uint64(len(items)))
	for _, it := range items {
		e.b = binary.LittleEndian.AppendUint32(e.b, it.OwnerHash)
		e.b = binary.LittleEndian.AppendUint16(e.b, it.EpochTag)
		e.uvarint(it.Have)
	}
	return e.b
}

// encodeRows splits an owner's rows into messages of about chunk bytes
// (0: repairChunk). complete goes on the last message only: the claim holds
// once all of them are applied.
func encodeRows(sender, owner string, epoch, from, complete uint64, rows []Entry, chunk int) [][]byte {
	if chunk == 0 {
		chunk = repairChunk
	}
	var out [][]byte
	for len(rows) > 0 || (len(out) == 0 && complete > 0) {
		e := encoder{}
		n, size := 0, 0
		for n < len(rows) && (n == 0 || size < chunk) {
			size += len(rows[n].Table) + len(rows[n].Key) + len(rows[n].Owner) + len(rows[n].Value) + 16
			n++
		}
		e.b = append(e.b, magic, msgRows)
		e.str(sender)
		e.str(owner)
		e.uvarint(epoch)
		e.uvarint(from)
		if n == len(rows) {
			e.uvarint(complete)
		} else {
			e.uvarint(0)
		}
		e.uvarint(uint64(n))
		for i := range rows[:n] {
			e.entry(&rows[i])
		}
		out = append(out, e.b)
		rows = rows[n:]
	}
	return out
}

// message is a decoded message.
type message struct {
	typ      byte
	sender   string
	owner    string
	epoch    uint64
	from     uint64
	complete uint64
	entries  []Entry
	digests  []ownerDigest
	vector   []vectorItem
	part     vectorPart
}

// decoder reads a message; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("%s: varint not in its shortest form", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) raw(what string, max int) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail("%s length %d exceeds %d", what, n, max)
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s length %d runs past the end", what, n)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) str(what string, max int) string { return string(d.raw(what, max)) }

func (d *decoder) count(what string, minItem int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64((len(d.b)-d.off)/minItem) {
		d.fail("%s %d cannot fit in %d bytes", what, n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) entry() Entry {
	var e Entry
	e.Table = d.str("table", MaxNameLen)
	e.Key = d.str("key", MaxKeyLen)
	e.Owner = d.str("owner", MaxNameLen)
	e.Version = d.uvarint("version")
	e.Epoch = d.uvarint("epoch")
	e.Seq = d.uvarint("seq")
	if d.err != nil {
		return e
	}
	if d.off >= len(d.b) {
		d.fail("flags missing")
		return e
	}
	flags := d.b[d.off]
	d.off++
	if flags&^(flagTombstone|flagClaim) != 0 {
		d.fail("unknown flags %#x", flags)
	}
	e.Deleted = flags&flagTombstone != 0
	if e.Deleted {
		at := d.uvarint("deleted at")
		if at > maxCounter {
			d.fail("deleted at %d out of range", at)
		}
		e.DeletedAt = int64(at)
	}
	if flags&flagClaim != 0 {
		if e.Claim = d.uvarint("claim"); e.Claim == 0 || e.Claim > maxCounter {
			d.fail("claim %d out of range", e.Claim)
		}
	}
	if v := d.raw("value", MaxValueLen); v != nil {
		e.Value = append([]byte(nil), v...)
	}
	if d.err == nil {
		switch {
		case e.Table == "" || e.Key == "" || e.Owner == "":
			d.fail("entry with empty table, key or owner")
		case e.Version == 0:
			d.fail("entry %s/%s with version 0", e.Table, e.Key)
		case e.Version > maxCounter || e.Epoch > maxCounter || e.Seq > maxCounter:
			d.fail("entry %s/%s with a counter past %d", e.Table, e.Key, uint64(maxCounter))
		}
	}
	return e
}

// decode parses a message. It never panics; anything not well-formed is
// an error wrapping ErrMalformed.
func decode(b []byte) (*message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxMessageSize)
	}
	if len(b) < 2 || b[0] != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	d := &decoder{b: b, off: 2}
	m := &message{typ: b[1]}
	switch m.typ {
	case msgUpdate:
		n := d.count("entry count", minEntryLen)
		for i := 0; i < n && d.err == nil; i++ {
			m.entries = append(m.entries, d.entry())
		}
	case msgDigest:
		m.sender = d.str("sender", MaxNameLen)
		n := d.count("owner count", digestItemLen)
		for i := 0; i < n && d.err == nil; i++ {
			var od ownerDigest
			od.Owner = d.str("owner", MaxNameLen)
			od.Rows = d.uvarint("rows")
			if d.err == nil && len(d.b)-d.off < 8 {
				d.fail("hash truncated")
			}
			if d.err == nil {
				od.Hash = binary.LittleEndian.Uint64(d.b[d.off:])
				d.off += 8
			}
			m.digests = append(m.digests, od)
		}
	case msgVector:
		m.sender = d.str("sender", MaxNameLen)
		part, parts := d.uvarint("part"), d.uvarint("parts")
		if d.err == nil && (parts > 1<<16 || (parts > 0 && part >= parts) || (parts == 0 && part != 0)) {
			d.fail("part %d of %d", part, parts)
		}
		m.part = vectorPart{Part: uint32(part), Parts: uint32(parts)}
		if d.err == nil {
			if d.off >= len(d.b) {
				d.fail("vector flags missing")
			} else if f := d.b[d.off]; f&^1 != 0 {
				d.fail("unknown vector flags %#x", f)
			} else {
				m.part.Cut = f == 1
				d.off++
			}
		}
		n := d.count("owner count", vectorItemLen)
		for i := 0; i < n && d.err == nil; i++ {
			var it vectorItem
			if len(d.b)-d.off < 6 {
				d.fail("owner hash truncated")
				break
			}
			it.OwnerHash = binary.LittleEndian.Uint32(d.b[d.off:])
			it.EpochTag = binary.LittleEndian.Uint16(d.b[d.off+4:])
			d.off += 6
			it.Have = d.uvarint("have")
			m.vector = append(m.vector, it)
		}
	case msgRows:
		m.sender = d.str("sender", MaxNameLen)
		m.owner = d.str("owner", MaxNameLen)
		m.epoch = d.uvarint("epoch")
		m.from = d.uvarint("from")
		m.complete = d.uvarint("complete")
		if d.err == nil && (m.epoch > maxCounter || m.complete > maxCounter || m.from > m.complete && m.complete != 0) {
			d.fail("rows with epoch %d from %d complete %d", m.epoch, m.from, m.complete)
		}
		n := d.count("entry count", minEntryLen)
		for i := 0; i < n && d.err == nil; i++ {
			e := d.entry()
			if d.err == nil && e.Owner != m.owner {
				d.fail("rows of %q carry a row of %q", m.owner, e.Owner)
			}
			m.entries = append(m.entries, e)
		}
	default:
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, m.typ)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
