package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vxnet/vxnet/agent/api"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
)

// localState is what an agent keeps of its own under --data-dir, so that
// kill -9 and a restart lose nothing and reuse no address: its rows of the
// replicated tables, its Lamport clock, its endpoints and its leases.
type localState struct {
	Version   int                     `json:"version"`
	Clock     uint64                  `json:"clock"`
	Rows      []kvs.Row               `json:"rows"`
	Endpoints []api.Endpoint          `json:"endpoints"`
	Leases    map[string][]netip.Addr `json:"leases"`
}

const stateVersion = 1

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
	s := &localStore{path: filepath.Join(dir, "state.json"), st: localState{Version: stateVersion, Leases: map[string][]netip.Addr{}}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return nil, fmt.Errorf("data-dir: %s is damaged (%v); move it away to start this host afresh", s.path, err)
	}
	if s.st.Version != stateVersion {
		return nil, fmt.Errorf("data-dir: %s has version %d, this vxnet reads %d", s.path, s.st.Version, stateVersion)
	}
	if s.st.Leases == nil {
		s.st.Leases = map[string][]netip.Addr{}
	}
	return s, nil
}

func (s *localStore) snapshot() localState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Rows = append([]kvs.Row(nil), s.st.Rows...)
	st.Endpoints = append([]api.Endpoint(nil), s.st.Endpoints...)
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
	b, err := json.MarshalIndent(&s.st, "", " ")
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
