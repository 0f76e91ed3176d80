package kvs

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestCodec_roundTrip(t *testing.T) {
	entries := []Entry{
		{Table: "endpoints", Key: "web/c1", Value: []byte(`{"ip":"10.0.9.2"}`), Owner: "host1", Version: 42},
		{Table: "endpoints", Key: "web/c2", Owner: "host2", Version: 1 << 40, Deleted: true, DeletedAt: 1_800_000_000_000_000_000},
		{Table: "endpoints", Key: "web/c3", Owner: "host3", Version: 9, Claim: 7, Value: []byte("x")},
		{Table: "endpoints", Key: "web/c4", Owner: "host3", Version: 10, Claim: 8, Deleted: true, DeletedAt: 5},
	}
	m, err := decode(encodeUpdate(entries))
	if err != nil || m.typ != msgUpdate || !reflect.DeepEqual(m.entries, entries) {
		t.Fatalf("update: %v %+v", err, m)
	}
	ds := []ownerDigest{{Owner: "host1", Rows: 3, Hash: 0xdeadbeef}, {Owner: "host2", Rows: 1, Hash: 1}}
	m, err = decode(encodeDigest("host9", ds))
	if err != nil || m.sender != "host9" || !reflect.DeepEqual(m.digests, ds) {
		t.Fatalf("digest: %v %+v", err, m)
	}
	var many []Entry
	for i := 0; i < 5000; i++ {
		many = append(many, Entry{Table: "t", Key: string(rune('a'+i%26)) + string(bytes.Repeat([]byte("k"), i%50)), Owner: "host1", Version: uint64(i + 1), Value: make([]byte, 100)})
	}
	chunks := encodeRows("host2", "host1", 5, 3, 77, many, 0)
	if len(chunks) < 2 {
		t.Errorf("%d rows in %d chunk(s): want several", len(many), len(chunks))
	}
	var got []Entry
	for _, c := range chunks {
		if len(c) > repairChunk+MaxValueLen+4096 {
			t.Errorf("chunk of %d bytes", len(c))
		}
		m, err := decode(c)
		if err != nil || m.owner != "host1" || m.sender != "host2" || m.epoch != 5 {
			t.Fatalf("rows: %v", err)
		}
		if last := &c[0] == &chunks[len(chunks)-1][0]; (m.complete == 77) != last {
			t.Errorf("complete %d on a chunk (last %v): the claim belongs on the last only", m.complete, last)
		}
		got = append(got, m.entries...)
	}
	if !reflect.DeepEqual(got, many) {
		t.Error("rows changed in transit")
	}
	vec := []vectorItem{{OwnerHash: 1, EpochTag: 2, Have: 3}, {OwnerHash: 0xffffffff, EpochTag: 0xffff, Have: 0}}
	full := make([]vectorItem, vectorMax)
	for i := range full {
		full[i] = vectorItem{OwnerHash: uint32(i), EpochTag: uint16(time.Now().UnixNano()), Have: 9999}
	}
	if n := len(encodeVector(string(make([]byte, 20)), vectorPart{Part: 1000, Parts: 1001, Cut: true}, full)); n > maxPacket {
		t.Errorf("a full sync vector takes %d bytes, over the %d a packet carries", n, maxPacket)
	}
	part := vectorPart{Part: 2, Parts: 3, Cut: true}
	m, err = decode(encodeVector("host3", part, vec))
	if err != nil || m.sender != "host3" || !reflect.DeepEqual(m.vector, vec) || m.part != part {
		t.Fatalf("vector: %v %+v", err, m)
	}
}

func TestCodec_rejectsMalformed(t *testing.T) {
	good := encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o", Version: 1}})
	for name, b := range map[string][]byte{
		"empty":           {},
		"bad magic":       append([]byte{0}, good[1:]...),
		"unknown type":    {magic, 99},
		"truncated":       good[:len(good)-1],
		"trailing":        append(append([]byte(nil), good...), 0),
		"huge count":      {magic, msgUpdate, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"version zero":    encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o"}}),
		"empty key":       encodeUpdate([]Entry{{Table: "t", Owner: "o", Version: 1}}),
		"long key":        encodeUpdate([]Entry{{Table: "t", Key: string(make([]byte, MaxKeyLen+1)), Owner: "o", Version: 1}}),
		"bad flags":       append(append([]byte(nil), good[:len(good)-2]...), 0x80, 0),
		"foreign row":     encodeRows("s", "o", 0, 0, 0, []Entry{{Table: "t", Key: "k", Owner: "x", Version: 1}}, 0)[0],
		"vector cut":      encodeVector("s", vectorPart{}, []vectorItem{{OwnerHash: 1, EpochTag: 1, Have: 1}})[:8],
		"bad part":        encodeVector("s", vectorPart{Part: 3, Parts: 2}, nil),
		"huge version":    encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o", Version: 1<<63 + 5}}),
		"huge seq":        encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o", Version: 1, Seq: 1 << 63}}),
		"from > complete": encodeRows("s", "o", 1, 9, 3, nil, 0)[0],
		"digest cut":      encodeDigest("s", []ownerDigest{{Owner: "o", Rows: 1, Hash: 7}})[:8],
		"oversized":       make([]byte, MaxMessageSize+1),
		"claim zero":      append(append([]byte(nil), good[:len(good)-2]...), flagClaim, 0, 0),
		"huge claim":      encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o", Version: 1, Claim: 1<<63 + 1}}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decode(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("decode: %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeUpdate([]Entry{{Table: "t", Key: "k", Owner: "o", Version: 1, Value: []byte("v")}}))
	f.Add(encodeDigest("s", []ownerDigest{{Owner: "o", Rows: 2, Hash: 9}}))
	f.Add(encodeRows("s", "o", 4, 2, 9, []Entry{{Table: "t", Key: "k", Owner: "o", Version: 3, Epoch: 4, Seq: 9, Deleted: true, DeletedAt: 12345}}, 0)[0])
	f.Add(encodeVector("s", vectorPart{Part: 1, Parts: 4}, []vectorItem{{OwnerHash: 7, EpochTag: 4, Have: 9}}))
	f.Add([]byte{magic, msgUpdate, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes.
		var again []byte
		switch m.typ {
		case msgUpdate:
			again = encodeUpdate(m.entries)
		case msgDigest:
			again = encodeDigest(m.sender, m.digests)
		case msgVector:
			again = encodeVector(m.sender, m.part, m.vector)
		case msgRows:
			if len(m.entries) == 0 && m.complete == 0 {
				return // encodeRows makes no message for nothing
			}
			chunks := encodeRows(m.sender, m.owner, m.epoch, m.from, m.complete, m.entries, MaxMessageSize)
			if len(chunks) != 1 {
				return
			}
			again = chunks[0]
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
