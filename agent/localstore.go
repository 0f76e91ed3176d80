package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// localState is what an agent keeps of its own under --data-dir, so that
// kill -9 and a restart lose nothing and reuse no address: its rows of the
// replicated tables, the cluster's rows it knows, its Lamport clock, its
// endpoints and its leases.
type localState struct {
	Clock uint64 `json:"clock"`
	// Rows are this host's rows of host-scoped tables, written again at
	// start.
	Rows []kvs.Row `json:"rows"`
	// Cluster are the rows of the cluster tables (networks, subnet
	// claims), every host's, tombstones included: put back as they were.
	Cluster   []kvs.Entry             `json:"cluster,omitempty"`
	Endpoints []tables.Endpoint       `json:"endpoints"`
	Leases    map[string][]netip.Addr `json:"leases"`
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

// StateError says the state file cannot be used, and how to go on.
type StateError struct {
	Path   string
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("data-dir: %s is damaged (%s); start the agent with --recover to set it aside and rebuild this host's endpoints and leases from the cluster (nothing is deleted from the cluster)", e.Path, e.Reason)
}

// localStore is the state file, written whole (to a temporary file, then
// renamed) after every change. It is the ipam.Store of the agent too.
type localStore struct {
	path string

	mu sync.Mutex
	st localState
}

var _ ipam.Store = (*localStore)(nil)
var _ ipam.LeaseLog = (*localStore)(nil)

func openLocalStore(dir string) (*localStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir %s: %w", dir, err)
	}
	s := &localStore{path: filepath.Join(dir, "state.json"), st: localState{Leases: map[string][]netip.Addr{}}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		return nil, &StateError{Path: s.path, Reason: err.Error()}
	}
	s.st = st
	return s, nil
}

// decodeState checks and decodes a state file.
func decodeState(b []byte) (localState, error) {
	var st localState
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

func recoveryMarked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, recoveryMarkFile))
	return err == nil
}

func markRecovery(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, recoveryMarkFile), nil, 0o600); err != nil {
		return fmt.Errorf("data-dir: marking the recovery: %w", err)
	}
	return nil
}

func clearRecovery(dir string) error {
	if err := os.Remove(filepath.Join(dir, recoveryMarkFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// setAside moves a damaged state file out of the way (kept for a person to
// look at) and returns where it went.
func setAside(dir string, now time.Time) (string, error) {
	path := filepath.Join(dir, "state.json")
	to := fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, to); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("data-dir: setting %s aside: %w", path, err)
	}
	return to, nil
}

func (s *localStore) snapshot() localState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Rows = append([]kvs.Row(nil), s.st.Rows...)
	st.Endpoints = append([]tables.Endpoint(nil), s.st.Endpoints...)
	st.Cluster = append([]kvs.Entry(nil), s.st.Cluster...)
	return st
}

// update changes the state and writes it.
func (s *localStore) update(f func(*localState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
	return s.writeLocked()
}

func (s *localStore) writeLocked() error {
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
func (s *localStore) Load(network string) (ipam.State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.st.Leases[network]
	return ipam.State{Allocated: append([]netip.Addr(nil), l...)}, ok, nil
}

// Save implements ipam.Store.
func (s *localStore) Save(network string, st ipam.State) error {
	return s.update(func(ls *localState) {
		if len(st.Allocated) == 0 {
			delete(ls.Leases, network)
		} else {
			ls.Leases[network] = st.Allocated
		}
	})
}

// Leased implements ipam.LeaseLog.
func (s *localStore) Leased(network string, a netip.Addr) error {
	return s.update(func(ls *localState) { ls.Leases[network] = append(ls.Leases[network], a) })
}

// Released implements ipam.LeaseLog.
func (s *localStore) Released(network string, a netip.Addr) error {
	return s.update(func(ls *localState) {
		l := ls.Leases[network]
		for i, x := range l {
			if x == a {
				ls.Leases[network] = append(l[:i], l[i+1:]...)
				break
			}
		}
		if len(ls.Leases[network]) == 0 {
			delete(ls.Leases, network)
		}
	})
}
