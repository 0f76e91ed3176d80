// Package hoststate is what one host keeps of its own under the agent's
// data directory (state.json): its rows of the replicated tables, the
// cluster's rows it knows, its Lamport clock, its endpoints, its address
// leases and the subnet claims of failed creations IPAM has still to
// withdraw. The file is written whole after every change, with a
// version and a checksum, so that kill -9 and a restart lose nothing and
// reuse no address, and a file damaged or edited by hand is refused (and
// can be set aside, for the host to rebuild its state from the cluster)
// rather than believed.
package hoststate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// State is what an agent keeps of its own under --data-dir, so that
// kill -9 and a restart lose nothing and reuse no address: its rows of the
// replicated tables, the cluster's rows it knows, its Lamport clock, its
// endpoints, its leases and the claims IPAM is still to withdraw.
type State struct {
	Clock uint64 `json:"clock"`
	// Rows are this host's rows of host-scoped tables, written again at
	// start.
	Rows []kvs.Row `json:"rows"`
	// Cluster are the rows of the cluster tables (networks, subnet
	// claims), every host's, tombstones included: put back as they were.
	Cluster []kvs.Entry `json:"cluster,omitempty"`
	// Others (with the etcd store) are the other hosts' rows of host
	// tables as last read from etcd: a restart while etcd is down serves
	// them until it is back.
	Others    []kvs.Entry             `json:"others,omitempty"`
	Endpoints []tables.Endpoint       `json:"endpoints"`
	Leases    map[string][]netip.Addr `json:"leases"`
	// Reserved are leases kept for a runtime that asked for an address
	// before its endpoint (Docker's IPAM), by network: the endpoint that
	// takes one over leaves its release to the runtime.
	Reserved map[string][]netip.Addr `json:"reserved,omitempty"`
	// Released are those of Reserved the runtime released while an
	// endpoint held them: they go back to IPAM when the endpoint goes.
	Released map[string][]netip.Addr `json:"released,omitempty"`
	// VIPs are the leases this host holds as services' VIPs, by service
	// key (network/name): they go back when the service does.
	VIPs map[string][]netip.Addr `json:"vips,omitempty"`
	// Mesh are this host's routing-mesh addresses, by network.
	Mesh map[string][]netip.Addr `json:"mesh,omitempty"`
	// Withdraw are the subnet claims of failed network creations IPAM is
	// still to withdraw (ipam.WithdrawalLog).
	Withdraw []ipam.PendingWithdrawal `json:"withdraw,omitempty"`
	// SavedAt is when the file was written (this host's clock).
	SavedAt time.Time `json:"savedAt"`
}

// stateFile is the file on disk: the state, its version and a checksum of
// its bytes, so that a file damaged or edited by hand is refused rather
// than believed (an emptied lease list would hand out addresses in use).
type stateFile struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"` // hex, of State's compact JSON
	State   json.RawMessage `json:"state"`
}

const stateVersion = 2

// StateVersion is the version of the state file this build writes and
// reads (older ones it cannot read are refused, naming --recover).
const StateVersion = stateVersion

// StateError says the state file cannot be used, and how to go on.
type StateError struct {
	Path   string
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("data-dir: %s is damaged (%s); start the agent with --recover to set it aside and rebuild this host's endpoints and leases from the cluster (nothing is deleted from the cluster)", e.Path, e.Reason)
}

// Store is the state file, written whole (to a temporary file, then
// renamed) after every change. It is the ipam.Store of the agent too.
type Store struct {
	path string

	mu sync.Mutex
	st State
}

var _ ipam.Store = (*Store)(nil)
var _ ipam.LeaseLog = (*Store)(nil)

// Open reads the state file of dir, or starts an empty one.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir %s: %w", dir, err)
	}
	s := &Store{path: filepath.Join(dir, "state.json"), st: State{Leases: map[string][]netip.Addr{}}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	st, err := Decode(b)
	if err != nil {
		return nil, &StateError{Path: s.path, Reason: err.Error()}
	}
	s.st = st
	return s, nil
}

// Decode checks and decodes a state file.
func Decode(b []byte) (State, error) {
	var st State
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return st, fmt.Errorf("not a state file: %v", err)
	}
	if f.Version != stateVersion {
		return st, fmt.Errorf("version %d, this vxnet reads %d", f.Version, stateVersion)
	}
	// The state is written compact and indented in the file: the sum is
	// of its compact form.
	var compact bytes.Buffer
	if err := json.Compact(&compact, f.State); err != nil {
		return st, fmt.Errorf("state: %v", err)
	}
	sum := sha256.Sum256(compact.Bytes())
	if hex.EncodeToString(sum[:]) != f.SHA256 {
		return st, errors.New("checksum mismatch: the file was changed after vxnet wrote it")
	}
	if err := json.Unmarshal(f.State, &st); err != nil {
		return st, fmt.Errorf("state: %v", err)
	}
	if st.Leases == nil {
		st.Leases = map[string][]netip.Addr{}
	}
	return st, nil
}

// The recovery mark: a file in the data dir while the host rebuilds its
// state from the cluster, so that a recovery cut short resumes at the next
// start rather than taking the partial state for the truth.
const recoveryMarkFile = "recovering"

// RecoveryMarked reports whether a recovery is under way in dir.
func RecoveryMarked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, recoveryMarkFile))
	return err == nil
}

// MarkRecovery marks a recovery under way in dir.
func MarkRecovery(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, recoveryMarkFile), nil, 0o600); err != nil {
		return fmt.Errorf("data-dir: marking the recovery: %w", err)
	}
	return nil
}

// ClearRecovery removes the mark: the recovery is done.
func ClearRecovery(dir string) error {
	if err := os.Remove(filepath.Join(dir, recoveryMarkFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ErrRecoveryNeedsJoin: a recovery was cut short, and the host can finish
// it only from a cluster it joins.
var ErrRecoveryNeedsJoin = errors.New("an interrupted recovery must finish: start again with --recover --join HOST:PORT")

// OpenAgent opens dir's state for an agent. With recover (the agent's
// --recover), a damaged file is set aside, and a missing one starts a
// recovery: the host rebuilds its state from the cluster, which it can
// reach only if it joins one (canJoin). A recovery cut short resumes at
// the next start. recovering says a recovery is under way.
func OpenAgent(dir string, recover, canJoin bool, log *slog.Logger) (s *Store, recovering bool, err error) {
	s, err = Open(dir)
	var se *StateError
	if errors.As(err, &se) && recover {
		to, aerr := SetAside(dir, time.Now())
		if aerr != nil {
			return nil, false, aerr
		}
		log.Warn("the state file is damaged; set aside, rebuilding from the cluster", "reason", se.Reason, "path", to)
		s, err = Open(dir)
	}
	if err != nil {
		return nil, false, err
	}
	if (!recover || !s.Snapshot().SavedAt.IsZero()) && !RecoveryMarked(dir) {
		if recover {
			log.Warn("--recover: the state file is sound; starting normally")
		}
		return s, false, nil
	}
	if err := MarkRecovery(dir); err != nil {
		return nil, false, err
	}
	if !canJoin {
		return nil, false, ErrRecoveryNeedsJoin
	}
	return s, true, nil
}

// SetAside moves a damaged state file out of the way (kept for a person to
// look at) and returns where it went.
func SetAside(dir string, now time.Time) (string, error) {
	path := filepath.Join(dir, "state.json")
	to := fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, to); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("data-dir: setting %s aside: %w", path, err)
	}
	return to, nil
}

// Snapshot is a copy of the state, sharing nothing with it: a caller may
// range over its leases while they are released.
func (s *Store) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Rows = slices.Clone(s.st.Rows)
	st.Endpoints = slices.Clone(s.st.Endpoints)
	st.Cluster = slices.Clone(s.st.Cluster)
	st.Others = slices.Clone(s.st.Others)
	st.Withdraw = slices.Clone(s.st.Withdraw)
	st.Leases, st.Reserved, st.Released = cloneAddrs(s.st.Leases), cloneAddrs(s.st.Reserved), cloneAddrs(s.st.Released)
	st.VIPs, st.Mesh = cloneAddrs(s.st.VIPs), cloneAddrs(s.st.Mesh)
	return st
}

// cloneAddrs copies a map of address lists, lists and all.
func cloneAddrs(m map[string][]netip.Addr) map[string][]netip.Addr {
	if m == nil {
		return nil
	}
	out := make(map[string][]netip.Addr, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// Update changes the state and writes it.
func (s *Store) Update(f func(*State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
	return s.writeLocked()
}

func (s *Store) writeLocked() error {
	s.st.SavedAt = time.Now().UTC()
	body, err := json.Marshal(&s.st)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, SHA256: hex.EncodeToString(sum[:]), State: body}, "", " ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("data-dir: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("data-dir: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	return nil
}

// Load implements ipam.Store.
func (s *Store) Load(network string) (ipam.State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.st.Leases[network]
	return ipam.State{Allocated: append([]netip.Addr(nil), l...)}, ok, nil
}

// Save implements ipam.Store.
func (s *Store) Save(network string, st ipam.State) error {
	return s.Update(func(ls *State) {
		if len(st.Allocated) == 0 {
			delete(ls.Leases, network)
		} else {
			ls.Leases[network] = st.Allocated
		}
	})
}

// PendingWithdrawals implements ipam.WithdrawalLog.
func (s *Store) PendingWithdrawals() ([]ipam.PendingWithdrawal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ipam.PendingWithdrawal(nil), s.st.Withdraw...), nil
}

// SavePendingWithdrawals implements ipam.WithdrawalLog.
func (s *Store) SavePendingWithdrawals(list []ipam.PendingWithdrawal) error {
	return s.Update(func(ls *State) { ls.Withdraw = list })
}

// Leased implements ipam.LeaseLog.
func (s *Store) Leased(network string, a netip.Addr) error {
	return s.Update(func(ls *State) { ls.Leases[network] = append(ls.Leases[network], a) })
}

// Released implements ipam.LeaseLog.
func (s *Store) Released(network string, a netip.Addr) error {
	return s.Update(func(ls *State) {
		l := ls.Leases[network]
		if i := slices.Index(l, a); i >= 0 {
			ls.Leases[network] = slices.Delete(slices.Clone(l), i, i+1)
		}
		if len(ls.Leases[network]) == 0 {
			delete(ls.Leases, network)
		}
	})
}
