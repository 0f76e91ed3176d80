package dns

import (
	"encoding/binary"
	"math/rand/v2"
)

// Wire layout of the parts of a message the fast path reads and writes
// (RFC 1035 4.1.1, RFC 6891 6.1.2):
//
//	 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|                      ID                       |  0
//	|QR|  Opcode   |AA|TC|RD|RA| Z|AD|CD|   RCODE   |  2
//	|                    QDCOUNT                    |  4
//	|                    ANCOUNT                    |  6
//	|                    NSCOUNT                    |  8
//	|                    ARCOUNT                    | 10
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	| QNAME (labels) | QTYPE | QCLASS |                 12
//	| OPT: 0x00 | TYPE 41 | UDP size | ext-RCODE | version | DO+Z | RDLEN | options
const (
	headerLen          = 12
	offsetFlags        = 2
	offsetQDCount      = 4
	offsetANCount      = 6
	offsetNSCount      = 8
	offsetARCount      = 10
	flagQR             = 0x80 // in byte offsetFlags
	flagAA             = 0x04
	flagTC             = 0x02
	flagRD             = 0x01
	maskOpcode         = 0x78
	flagRA             = 0x80 // in byte offsetFlags+1
	flagCD             = 0x10
	optLen             = 11 // an OPT RR with no options
	typeOPT            = 41
	classINET          = 1
	minUDPSize         = 512   // without EDNS0 (RFC 1035)
	maxMsgLen          = 65535 // TCP
	maxNameLen         = 255
	maxLabelLen        = 63
	rcodeSuccess       = 0
	rcodeFormErr       = 1
	rcodeServFail      = 2
	rcodeNXDomain      = 3
	rcodeNotImp        = 4
	rcodeRefused       = 5
	queryTypeAndClass  = 4
	rrFixedLen         = 10 // type, class, TTL, RDLENGTH
	maxSetsPerQuestion = 16 // networks of one view that can hold one name
)

// action tells the transport what to do with a query after answer.
type action uint8

const (
	actReply   action = iota // send the response built
	actForward               // ask the upstream servers
	actDrop                  // send nothing (not a query, or too broken to answer)
)

// question is what the fast path extracts from a query.
type question struct {
	qEnd     int    // offset just past the question
	qtype    uint16 // QTYPE
	qclass   uint16 // QCLASS
	name     []byte // lower-case FQDN, in the caller's scratch
	nameOK   bool   // name is plain labels that could be ours
	edns     bool   // the query carries an OPT record
	udpSize  uint16 // the client's EDNS0 UDP payload size
	ednsVers uint8
}

// scratch is per-goroutine working memory for answer, so the hot path
// does not allocate. Owned by one goroutine at a time.
type scratch struct {
	name [maxNameLen + 1]byte
	sets []*RRSet
	perm []uint16
}

func newScratch() *scratch {
	return &scratch{sets: make([]*RRSet, 0, maxSetsPerQuestion), perm: make([]uint16, 0, 64)}
}

// parseQuestion reads the header and the single question of q. rcode is
// rcodeSuccess when the query can be answered; drop means no answer at all.
func parseQuestion(q []byte, sc *scratch) (qs question, rcode int, drop bool) {
	if len(q) < headerLen || q[offsetFlags]&flagQR != 0 {
		return qs, 0, true // runt or a response: never answer (no reflection loops)
	}
	if q[offsetFlags]&maskOpcode != 0 {
		return qs, rcodeNotImp, false
	}
	if be16(q, offsetQDCount) != 1 || be16(q, offsetANCount) != 0 || be16(q, offsetNSCount) != 0 || be16(q, offsetARCount) > 1 {
		return qs, rcodeFormErr, false
	}
	off, ok := parseName(q, headerLen, sc, &qs)
	if !ok || off+queryTypeAndClass > len(q) {
		return qs, rcodeFormErr, false
	}
	qs.qtype, qs.qclass = be16(q, off), be16(q, off+2)
	qs.qEnd = off + queryTypeAndClass
	if be16(q, offsetARCount) == 1 && !parseOPT(q[qs.qEnd:], &qs) {
		return qs, rcodeFormErr, false
	}
	return qs, rcodeSuccess, false
}

// parseName reads the uncompressed name at off into sc.name, lower-cased
// and dot-separated with a trailing dot. Labels with bytes outside
// [a-z0-9_-] keep the name wire-valid but mark it as not ours.
func parseName(q []byte, off int, sc *scratch, qs *question) (int, bool) {
	n := 0
	qs.nameOK = true
	for {
		if off >= len(q) {
			return 0, false
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l > maxLabelLen || off+l > len(q) || n+l+1 > maxNameLen {
			return 0, false // also rejects compression pointers (0xC0)
		}
		for _, c := range q[off : off+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				qs.nameOK = false
			}
			sc.name[n] = c
			n++
		}
		sc.name[n] = '.'
		n++
		off += l
	}
	if n == 0 {
		sc.name[0] = '.'
		n = 1
		qs.nameOK = false // the root is never ours
	}
	qs.name = sc.name[:n]
	return off, true
}

// parseOPT reads the one additional record, which must be an OPT.
func parseOPT(b []byte, qs *question) bool {
	if len(b) < optLen || b[0] != 0 || be16(b, 1) != typeOPT {
		return false
	}
	rdlen := int(be16(b, 9))
	if len(b) != optLen+rdlen {
		return false
	}
	qs.edns = true
	qs.udpSize = be16(b, 3)
	qs.ednsVers = b[6]
	return true
}

func be16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }

// respHeader starts a response in out: the query's header and question as
// sent (keeping the client's letter case), then flags and rcode.
func respHeader(out, q []byte, qEnd int, rcode int, aa, ra bool) []byte {
	out = append(out[:0], q[:qEnd]...)
	f := flagQR | q[offsetFlags]&(maskOpcode|flagRD)
	if aa {
		f |= flagAA
	}
	out[offsetFlags] = f
	f2 := q[offsetFlags+1]&flagCD | byte(rcode&0xF)
	if ra {
		f2 |= flagRA
	}
	out[offsetFlags+1] = f2
	binary.BigEndian.PutUint16(out[offsetQDCount:], 1)
	if qEnd == headerLen {
		binary.BigEndian.PutUint16(out[offsetQDCount:], 0)
	}
	clear(out[offsetANCount:headerLen])
	return out
}

// errorResp answers q with rcode and no question when the question could
// not be read.
func errorResp(out, q []byte, qs *question, rcode int, ra bool) []byte {
	end := qs.qEnd
	if end == 0 {
		end = headerLen
	}
	return respHeader(out, q, end, rcode, false, ra)
}

// appendOPT adds our OPT record (payload size, no options) if the client
// sent one, and counts it.
func appendOPT(out []byte, qs *question, size uint16) []byte {
	if !qs.edns {
		return out
	}
	out = append(out, 0, 0, typeOPT, byte(size>>8), byte(size), 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(out[offsetARCount:], be16(out, offsetARCount)+1)
	return out
}

// appendSets adds the answer records of sets to out, whole records only
// and no more than fit in limit bytes with reserve left over; it returns
// false if some did not fit (the caller sets TC). Shuffled sets come out
// in a fresh random order.
func appendSets(out []byte, sets []*RRSet, limit, reserve int, sc *scratch) ([]byte, bool) {
	n := be16(out, offsetANCount)
	whole := true
	for _, s := range sets {
		k := s.Len()
		if !s.Shuffle || k < 2 {
			if len(out)+len(s.wire)+reserve <= limit {
				out = append(out, s.wire...)
				n += uint16(k)
				continue
			}
		}
		perm := sc.perm[:0]
		for i := 0; i < k; i++ {
			perm = append(perm, uint16(i))
		}
		if s.Shuffle {
			for i := k - 1; i > 0; i-- {
				j := rand.N(i + 1)
				perm[i], perm[j] = perm[j], perm[i]
			}
		}
		sc.perm = perm
		for _, i := range perm {
			rr := s.wire[s.offs[i]:s.offs[i+1]]
			if len(out)+len(rr)+reserve > limit {
				whole = false
				break
			}
			out = append(out, rr...)
			n++
		}
		if !whole {
			break
		}
	}
	binary.BigEndian.PutUint16(out[offsetANCount:], n)
	return out, whole
}

// appendExtra adds the additional records of sets that fit, never
// truncating for them (RFC 2181 9).
func appendExtra(out []byte, sets []*RRSet, limit, reserve int) []byte {
	for _, s := range sets {
		if s.nx == 0 || len(out)+len(s.extra)+reserve > limit {
			continue
		}
		out = append(out, s.extra...)
		binary.BigEndian.PutUint16(out[offsetARCount:], be16(out, offsetARCount)+uint16(s.nx))
	}
	return out
}
