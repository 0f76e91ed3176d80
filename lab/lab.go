package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/join"
)

// Lab is a lab that is up (or being built or taken down). Its methods are
// safe for concurrent use.
type Lab struct {
	cfg   Config
	run   runner
	outMu sync.Mutex // serialises progress lines
	mu    sync.Mutex // guards st and the state file
	st    *State
}

// Up builds a lab: the underlay, then the agents (the first host alone, the
// others joining it), and waits until every agent lists every host as a
// member. On failure it takes down whatever it built and returns why (an
// *AgentError carries the tail of the agent's log).
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(cfg.Binary)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		return nil, fmt.Errorf("vxnet binary: %w", err)
	}
	cfg.Binary = bin
	if _, err := LoadState(cfg.Dir); err == nil {
		return nil, fmt.Errorf("%w: %s exists (vxnet lab status --id %s, vxnet lab down --id %s)",
			ErrAlreadyUp, filepath.Join(cfg.Dir, StateFile), cfg.ID, cfg.ID)
	}
	l := &Lab{cfg: cfg, run: execRunner{}, st: newState(cfg)}
	if ns, err := labNamespaces(ctx, l.run, cfg.ID); err != nil {
		return nil, err
	} else if len(ns) > 0 {
		return nil, fmt.Errorf("%w: namespaces %s exist without a state file (vxnet lab down --id %s removes them)",
			ErrAlreadyUp, quoteList(ns), cfg.ID)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := l.st.Save(); err != nil {
		return nil, err
	}
	if err := l.up(ctx); err != nil {
		l.say("lab %s did not come up; taking down what was built", cfg.ID)
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if derr := l.Down(cctx); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return l, nil
}

func (l *Lab) up(ctx context.Context) error {
	s := l.State()
	start := time.Now()
	l.say("lab %s: %d hosts on underlay %s (switch %s in namespace %s), state in %s",
		s.ID, len(s.Hosts), s.Subnet, bridgeDev, s.BridgeNetns, s.Dir)
	if err := buildUnderlay(ctx, l.run, &s); err != nil {
		return err
	}
	if err := checkUnderlay(ctx, l.run, &s); err != nil {
		return err
	}
	for _, h := range s.Hosts {
		l.say("  %-4s namespace %-14s underlay %s", h.Name, h.Netns, h.Addr)
	}
	if o := s.Outside; o.Netns != "" {
		l.say("  outside namespace %s underlay %s: beyond the cluster; the agents forward names they do not own there (lab demo runs a DNS server in it)", o.Netns, o.Addr)
	}
	if s.Store == StoreEtcd {
		if err := l.startEtcd(ctx); err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		l.say("  etcd at %s (in the outside namespace): the agents keep their tables there", s.EtcdEndpoint())
	}
	if s.GossipKeyFile != "" {
		if err := writeGossipKey(s.GossipKeyFile); err != nil {
			return err
		}
		l.say("  gossip encrypted with the key in %s (encrypted networks need one)", s.GossipKeyFile)
	}
	if s.JoinCertFile != "" {
		cert, key, err := join.NewCertificate()
		if err == nil {
			os.Remove(s.JoinKeyFile) // one left by a lab that went down badly: WriteFile keeps an old file's mode
			err = errors.Join(os.WriteFile(s.JoinCertFile, cert, 0o644), os.WriteFile(s.JoinKeyFile, key, 0o600))
		}
		if err != nil {
			return fmt.Errorf("join certificate: %w", err)
		}
	}
	if err := l.StartAgent(ctx, s.Hosts[0].Name); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(s.Hosts))
	for i, h := range s.Hosts[1:] {
		wg.Go(func() { errs[i+1] = l.StartAgent(ctx, h.Name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := l.WaitMembers(ctx); err != nil {
		return err
	}
	if len(s.Hosts) == 1 {
		l.say("lab %s is up in %.1fs: its agent sees itself", s.ID, time.Since(start).Seconds())
	} else {
		l.say("lab %s is up in %.1fs: every agent sees %d members", s.ID, time.Since(start).Seconds(), len(s.Hosts))
	}
	return nil
}

// Open returns the lab that is up under cfg.ID (and cfg.Dir), from its
// state file; ErrNotUp if there is none.
func Open(cfg Config) (*Lab, error) {
	cfg = cfg.withDefaults()
	if err := validateID(cfg.ID); err != nil {
		return nil, err
	}
	st, err := LoadState(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if st.ID != cfg.ID {
		return nil, fmt.Errorf("%s holds lab %q, not %q", cfg.Dir, st.ID, cfg.ID)
	}
	return &Lab{cfg: cfg, run: execRunner{}, st: st}, nil
}

// State returns a copy of the lab's state.
func (l *Lab) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := *l.st
	s.Hosts = slices.Clone(s.Hosts)
	s.Containers = slices.Clone(s.Containers)
	return s
}

// update changes the state under the lock and saves it.
func (l *Lab) update(fn func(*State)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.st)
	return l.st.Save()
}

// say prints one progress line.
func (l *Lab) say(format string, args ...any) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	fmt.Fprintf(l.cfg.Out, format+"\n", args...)
}

// cleanupContext outlives ctx's cancellation (a ^C must not stop the
// cleanup it triggered) but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
}

// Down takes down the lab under cfg.ID and cfg.Dir, whether or not its
// state file exists (then it removes the namespaces that follow the lab's
// naming pattern). Taking down a lab that is not there succeeds.
func Down(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := validateID(cfg.ID); err != nil {
		return err
	}
	if err := checkPlatform(); err != nil {
		return err
	}
	l := &Lab{cfg: cfg, run: execRunner{}}
	st, err := LoadState(cfg.Dir)
	switch {
	case err == nil:
		l.st = st
	case !errors.Is(err, ErrNotUp):
		l.say("lab %s: ignoring unreadable state: %v", cfg.ID, err)
	}
	return l.Down(ctx)
}

// Down stops the lab's processes and removes its namespaces, their
// /etc/netns directories and the lab directory.
func (l *Lab) Down(ctx context.Context) error {
	var s State
	if l.st != nil {
		s = l.State()
	}
	var procs []Proc
	for _, c := range s.Containers {
		procs = append(procs, c.Echo)
	}
	for _, h := range s.Hosts {
		procs = append(procs, h.Agent)
	}
	procs = append(procs, s.Outside.Echo, s.Outside.DNS, s.Outside.Etcd)
	// Namespaces of the lab's endpoints that it did not make (attached
	// by hand): the agents wrote their resolv.conf, which must go with
	// the agents, as endpoint rm would have taken it.
	var attached []string
	for _, h := range s.Hosts {
		if !alive(h.Agent) {
			continue
		}
		eps, _ := l.Endpoints(ctx, h.Name)
		for _, e := range eps {
			if e.Netns != "" && !slices.Contains(s.Namespaces(), e.Netns) && !slices.Contains(attached, e.Netns) {
				attached = append(attached, e.Netns)
			}
		}
	}
	live := countAlive(procs)
	_, perr := stopProcs(ctx, procs, 10*time.Second)
	errs := []error{perr}
	existing, err := labNamespaces(ctx, l.run, l.cfg.ID)
	errs = append(errs, err)
	var kept []string
	if l.st != nil {
		// The state lists every container namespace the lab made (each
		// is recorded before it is made): one under the lab's names that
		// it does not list, someone made by hand, and it stays.
		existing = slices.DeleteFunc(existing, func(ns string) bool {
			byHand := isContainerNetns(ns) && !slices.Contains(s.Namespaces(), ns)
			if byHand {
				kept = append(kept, ns)
			}
			return byHand
		})
	}
	all := downOrder(s.Namespaces(), existing)
	deleted := 0
	for _, ns := range all {
		if slices.Contains(existing, ns) {
			errs = append(errs, l.stopStrays(ctx, ns))
			if _, err := l.run.run(ctx, "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			} else {
				deleted++
			}
		}
		errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", ns)))
	}
	for _, ns := range attached {
		dns.RemoveNetnsResolvConf(ns)
	}
	errs = append(errs, removeLabDir(l.cfg.Dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("taking down lab %s: %w", l.cfg.ID, err)
	}
	if l.st == nil && len(existing) == 0 {
		l.say("lab %s: nothing to take down", l.cfg.ID)
		return nil
	}
	l.say("lab %s is down: processes stopped: %d, namespaces deleted: %d", l.cfg.ID, live, deleted)
	if len(kept) > 0 {
		l.say("lab %s: left %d namespace(s) named like its containers but not made by it (ip netns del removes them): %s", l.cfg.ID, len(kept), strings.Join(kept, " "))
	}
	return nil
}

// downOrder merges the state's namespaces with the existing ones that
// follow the pattern: containers first, then hosts and the outside, then
// the bridge.
func downOrder(fromState, existing []string) []string {
	var all []string
	for _, ns := range append(slices.Clone(fromState), existing...) {
		if ns != "" && !slices.Contains(all, ns) {
			all = append(all, ns)
		}
	}
	rank := func(ns string) int {
		switch {
		case strings.HasSuffix(ns, "-bridge"):
			return 2
		case isContainerNetns(ns):
			return 0
		default:
			return 1
		}
	}
	slices.SortStableFunc(all, func(a, b string) int { return rank(a) - rank(b) })
	return all
}

// isContainerNetns reports whether ns, a lab's namespace, is a
// container's (<id>-hN-cM).
func isContainerNetns(ns string) bool {
	i := strings.LastIndexByte(ns, '-')
	return i >= 0 && strings.HasPrefix(ns[i:], "-c")
}

// stopStrays stops whatever still runs inside namespace ns (a shell someone
// left there, a probe of a killed demo), by PID.
func (l *Lab) stopStrays(ctx context.Context, ns string) error {
	out, err := l.run.run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	var procs []Proc
	for _, f := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid != os.Getpid() {
			if p, err := identify(pid); err == nil {
				procs = append(procs, p)
			}
		}
	}
	if len(procs) > 0 {
		l.say("  stopping pids %v still running in %s", pids(procs), ns)
	}
	_, err = stopProcs(ctx, procs, 5*time.Second)
	return err
}

// removeLabDir removes what the lab put in dir, then dir and the default
// parent if they are empty. It never removes files it did not make.
func removeLabDir(dir string) error {
	var errs []error
	for _, pat := range []string{StateFile, StateFile + ".tmp", "h[0-9]*", "containers", outsideDir, gossipKeyName, "." + gossipKeyName + ".*", joinCertName, joinKeyName} {
		matches, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range matches {
			errs = append(errs, os.RemoveAll(m))
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab directory not removed: %w", err))
	}
	if filepath.Dir(dir) == DefaultBaseDir {
		os.Remove(DefaultBaseDir) // fails while another lab uses it, as it should
	}
	return errors.Join(errs...)
}

func countAlive(procs []Proc) int {
	n := 0
	for _, p := range procs {
		if alive(p) {
			n++
		}
	}
	return n
}

// gossipKeyName is the agents' gossip key file in the lab directory;
// joinCertName and joinKeyName their join certificate and key.
const (
	gossipKeyName = "gossip.key"
	joinCertName  = "join.crt"
	joinKeyName   = "join.key"
)

// writeGossipKey writes a new gossip key (32 random bytes, base64, on the
// file's one line) to path, mode 0600, as the agents' --gossip-key-file
// takes it. The lab's directory is its own: no one reads the file before
// the agents start.
func writeGossipKey(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("gossip key: %w", err)
	}
	os.Remove(path) // a key left by a lab that went down badly: WriteFile keeps an old file's mode
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("gossip key: %w", err)
	}
	return nil
}
