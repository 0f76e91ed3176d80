package hoststate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

func TestLocalStore_roundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := netip.MustParseAddr("10.0.9.2"), netip.MustParseAddr("10.0.9.3")
	s.Leased("web", a1)
	s.Leased("web", a2)
	s.Released("web", a1)
	s.Update(func(st *State) {
		st.Clock = 42
		st.Rows = []kvs.Row{{Table: "networks", Key: "web", Value: []byte(`{}`)}}
		st.Endpoints = []tables.Endpoint{{Name: "c1", Network: "web"}}
	})
	pending := []ipam.PendingWithdrawal{{Network: "late", Claim: []byte(`{"creator":"h1","created":7,"rev":1,"subnet":"10.9.0.0/24"}`), Since: time.Unix(1700000000, 0).UTC()}}
	if err := s.SavePendingWithdrawals(pending); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, ok, _ := s2.Load("web")
	if !ok || len(st.Allocated) != 1 || st.Allocated[0] != a2 {
		t.Fatalf("leases after reopening: %v %v", st.Allocated, ok)
	}
	snap := s2.Snapshot()
	if snap.Clock != 42 || len(snap.Rows) != 1 || len(snap.Endpoints) != 1 {
		t.Fatalf("state after reopening: %+v", snap)
	}
	got, _ := s2.PendingWithdrawals()
	for i := range got { // the file is indented
		var b bytes.Buffer
		json.Compact(&b, got[i].Claim)
		got[i].Claim = b.Bytes()
	}
	if !reflect.DeepEqual(got, pending) {
		t.Fatalf("claims to withdraw after reopening: %+v, want %+v", got, pending)
	}
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
}

func TestLocalStore_damagedFileNamed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600)
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "state.json is damaged") {
		t.Fatalf("error %v", err)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"version": 99}`), 0o600)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "version 99") || !strings.Contains(err.Error(), "--recover") {
		t.Fatalf("error %v", err)
	}
}

// TestLocalStore_alteredFileRefused: a file that is valid JSON but was
// changed after vxnet wrote it (its leases emptied by hand) is refused, not
// believed; set aside, it leaves room for a fresh one.
func TestLocalStore_alteredFileRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Leased("web", netip.MustParseAddr("10.0.9.2"))
	path := filepath.Join(dir, "state.json")
	b, _ := os.ReadFile(path)
	altered := strings.Replace(string(b), `"10.0.9.2"`, "", 1)
	if altered == string(b) {
		t.Fatalf("the lease is not where the test looks:\n%s", b)
	}
	os.WriteFile(path, []byte(altered), 0o600)
	_, err = Open(dir)
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("altered file: %v, want a StateError about the checksum", err)
	}
	to, err := SetAside(dir, time.Unix(1_800_000_000, 0))
	if err != nil || !strings.HasSuffix(to, ".damaged-20270115T080000Z") {
		t.Fatalf("set aside: %q %v", to, err)
	}
	if _, err := os.Stat(to); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir); err != nil || len(s2.Snapshot().Leases) != 0 {
		t.Fatalf("fresh store after setting aside: %v", err)
	}
}

// FuzzDecodeState: any bytes in the state file give a state or an error,
// never a panic; a file vxnet wrote always decodes.
func FuzzDecodeState(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	s.Leased("web", netip.MustParseAddr("10.0.9.2"))
	good, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version": 2, "sha256": "", "state": {}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err == nil && st.Leases == nil {
			t.Errorf("decoded state without a lease map")
		}
	})
}

// TestSnapshot_sharesNothing: a snapshot's leases stay as they were while
// the store releases them (a loop over a snapshot's leases that releases
// each one saw the list shift under it and skipped every other lease).
func TestSnapshot_sharesNothing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for i := 2; i < 8; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, 9, byte(i)})
		s.Leased("web", a)
		want = append(want, a)
	}
	snap := s.Snapshot()
	var seen []netip.Addr
	for _, a := range snap.Leases["web"] {
		seen = append(seen, a)
		if err := s.Released("web", a); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("releasing over a snapshot saw %v, want every lease %v", seen, want)
	}
	if left := s.Snapshot().Leases["web"]; len(left) != 0 {
		t.Errorf("leases left: %v", left)
	}
}
