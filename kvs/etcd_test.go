package kvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/gossiptest"
	"github.com/vxnet/vxnet/internal/etcdrun"
	"github.com/vxnet/vxnet/internal/etcdtest"
)

// etcdSuite is a suite on its own etcd cluster, for tests that break it.
func etcdSuite(t *testing.T, n int, ecfg EtcdConfig) (*suite, *etcdtest.Cluster) {
	ec := etcdtest.Start(t, 3)
	ecfg.Endpoints, ecfg.Prefix = ec.Endpoints(), suitePrefix(t)
	if ecfg.LeaseTTL == 0 {
		ecfg.LeaseTTL = 2 * time.Second
	}
	b := backend{name: "etcd", open: func(t *testing.T, cfg Config, gcfg gossip.Config) Tables {
		e, err := NewEtcd(cfg, ecfg, gcfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}}
	return newSuite(t, b, n, suiteConfig()), ec
}

func testEtcdClient(t *testing.T, ec *etcdtest.Cluster) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// With every etcd member down, readers keep the last tables, writes fail
// with ErrUnavailable naming the store (a host's delete of its own row is
// done once etcd is back), health says so; once etcd is back everything
// converges and the hosts' rows are still there.
func TestEtcd_storeDownKeepsTablesAndRecovers(t *testing.T) {
	s, ec := etcdSuite(t, 2, EtcdConfig{RequestTimeout: time.Second})
	mustPut(t, s.nodes[0], "networks", "web", "n")
	mustPut(t, s.nodes[0], "t", "a", "a")
	mustPut(t, s.nodes[1], "t", "b", "b")
	s.waitConverged(3)
	for i := range 3 {
		ec.Kill(i)
	}
	waitFor(t, "both hosts to report the store down", 30*time.Second, func() bool {
		return !s.nodes[0].Health().Up && !s.nodes[1].Health().Up
	})
	for _, n := range s.nodes {
		if got := len(n.List("")); got != 3 {
			t.Errorf("%s shows %d rows with etcd down, want the last 3", n.Node().Name(), got)
		}
	}
	_, err := s.nodes[0].Put("t", "during", []byte("x"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), ec.Endpoints()[0]) {
		t.Errorf("write with etcd down: %v, want ErrUnavailable naming the endpoints", err)
	}
	// What a user is told names the store, not the row.
	var said interface{ Summary() string }
	if !errors.As(err, &said) || !strings.Contains(said.Summary(), ec.Endpoints()[0]) || strings.Contains(said.Summary(), "during") {
		t.Errorf("write with etcd down: summary %v, want the endpoints and no key", said)
	}
	// A host's delete of its own row never fails (as in gossip): the row
	// goes once etcd is back.
	if err := s.nodes[1].Delete("t", "b"); err != nil {
		t.Errorf("delete of its own row with etcd down: %v", err)
	}
	if err := s.nodes[1].Delete("networks", "web"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("delete of a cluster row with etcd down: %v, want ErrUnavailable", err)
	}
	if h := s.nodes[0].Health(); h.Error == "" {
		t.Errorf("health %+v names no error", h)
	}
	for i := range 3 {
		ec.Start(i)
	}
	ec.WaitHealthy()
	waitFor(t, "both hosts to report the store up", 30*time.Second, func() bool {
		return s.nodes[0].Health().Up && s.nodes[1].Health().Up
	})
	mustPut(t, s.nodes[1], "t", "after", "y")
	s.waitEverywhere("t", "b", nil, "")
	s.waitConverged(3) // web, a, after
}

// Every write a host was told succeeded is there after an etcd member is
// killed and restarted in the middle of them: no write lost.
func TestEtcd_memberKilledDuringWritesLosesNothing(t *testing.T) {
	s, ec := etcdSuite(t, 3, EtcdConfig{})
	var mu sync.Mutex
	acked := map[string]string{} // key → owner
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 60 {
				key := fmt.Sprintf("%d/%d", i, k)
				if _, err := n.Put("t", key, []byte("v")); err == nil {
					mu.Lock()
					acked[key] = s.names[i]
					mu.Unlock()
				}
			}
		}()
	}
	ec.Kill(0)
	ec.Start(0)
	wg.Wait()
	ec.WaitHealthy()
	if len(acked) < 90 {
		t.Errorf("only %d of 180 writes succeeded with one member of three restarting", len(acked))
	}
	waitFor(t, "every host to show every acknowledged write", 30*time.Second, func() bool {
		for _, n := range s.nodes {
			for k, owner := range acked {
				if e, ok := n.Get("t", k); !ok || e.Owner != owner {
					return false
				}
			}
		}
		return true
	})
	s.waitConverged(len(s.nodes[0].List("")))
}

// A key under the prefix that is not a row is counted and skipped; the
// other rows are read as usual. A prefix holding another program's data
// is refused with an error that names it.
func TestEtcd_foreignKeysAndPrefix(t *testing.T) {
	s, ec := etcdSuite(t, 1, EtcdConfig{})
	cli := testEtcdClient(t, ec)
	ctx := context.Background()
	prefix := suitePrefix(t)
	for _, k := range []string{"/rows/x", "/rows/t/k", "/rows/t/k/o/extra", "/rows/%zz/k/o"} {
		if _, err := cli.Put(ctx, prefix+k, "junk"); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s.nodes[0], "t", "good", "g")
	waitFor(t, "the good row to show and the junk to be counted", 10*time.Second, func() bool {
		_, ok := s.nodes[0].Get("t", "good")
		return ok && s.nodes[0].Stats().Malformed >= 4 && len(s.nodes[0].List("")) == 1
	})

	other := "/not-vxnet-" + fmt.Sprint(time.Now().UnixNano())
	if _, err := cli.Put(ctx, other+"/meta", "something else"); err != nil {
		t.Fatal(err)
	}
	gcfg := gossip.DefaultFastConfig("stranger")
	gcfg.Transport = s.net.NewTransport("stranger")
	e, err := NewEtcd(suiteConfig(), EtcdConfig{Endpoints: ec.Endpoints(), Prefix: other, RequestTimeout: time.Second}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waitFor(t, "the agent to say the prefix is not vxnet's", 10*time.Second, func() bool {
		return strings.Contains(e.Health().Error, "does not hold vxnet's marker")
	})
	if _, err := e.Put("t", "k", []byte("v")); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), other) {
		t.Errorf("write under a foreign prefix: %v, want ErrUnavailable naming %s", err, other)
	}
}

func TestEtcdConfig_validate(t *testing.T) {
	for _, c := range []struct {
		cfg  EtcdConfig
		want string
	}{
		{EtcdConfig{}, "no endpoints"},
		{EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}}, `"127.0.0.1:2379"`},
		{EtcdConfig{Endpoints: []string{"ftp://x"}}, `"ftp://x"`},
		{EtcdConfig{Endpoints: []string{"http://x:2379"}, LeaseTTL: time.Second}, "lease TTL 1s"},
		{EtcdConfig{Endpoints: []string{"http://x:2379"}, Prefix: "/"}, `prefix "/"`},
	} {
		c.cfg.setDefaults()
		err := c.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %s", c.cfg, err, c.want)
		}
	}
}

// Export reads back what the hosts wrote; import into another prefix
// writes the rows that are not there yet and leaves the others alone.
func TestEtcd_exportImport(t *testing.T) {
	s, ec := etcdSuite(t, 2, EtcdConfig{})
	mustPut(t, s.nodes[0], "networks", "web/node00", "n")
	mustPut(t, s.nodes[1], "endpoints", "web/c1", "e")
	s.waitConverged(2)
	ctx := context.Background()
	rows, skipped, err := ExportEtcd(ctx, EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t)}, suiteConfig())
	if err != nil || skipped != 0 || len(rows) != 2 {
		t.Fatalf("export: %v rows %v skipped %d", err, rows, skipped)
	}
	other := EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t) + "-copy"}
	if w, p, err := ImportEtcd(ctx, other, rows[:1]); err != nil || w != 1 || p != 0 {
		t.Fatalf("import: written %d present %d: %v", w, p, err)
	}
	if w, p, err := ImportEtcd(ctx, other, rows); err != nil || w != 1 || p != 1 {
		t.Fatalf("import again: written %d present %d (want 1 and 1): %v", w, p, err)
	}
	back, _, err := ExportEtcd(ctx, other, suiteConfig())
	if err != nil || len(back) != 2 {
		t.Fatalf("export of the copy: %v %v", back, err)
	}
	for i := range back {
		if back[i].Table != rows[i].Table || back[i].Key != rows[i].Key || back[i].Owner != rows[i].Owner || string(back[i].Value) != string(rows[i].Value) {
			t.Errorf("row %d: copied %v, want %v", i, back[i], rows[i])
		}
	}
	if _, _, err := ImportEtcd(ctx, other, []Entry{{Table: "t", Key: "", Owner: "x"}}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("a row with no key: %v", err)
	}
	if _, _, err := ImportEtcd(ctx, other, []Entry{{Table: "t", Key: "k", Value: []byte("v")}}); err == nil || !strings.Contains(err.Error(), "owner") {
		t.Errorf("a row with no owner: %v", err)
	}
}

// A node whose watch starts behind etcd's compaction (rows written and
// deleted, then compacted, between its full read and its watch) reads
// the tables whole again and shows what etcd holds.
func TestEtcd_watchBehindCompactionResyncs(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	cli := testEtcdClient(t, ec)
	prefix := suitePrefix(t)
	var once sync.Once
	testHookBeforeWatch = func(e *Etcd, rev int64) {
		if e.st.self != "late" {
			return
		}
		once.Do(func() {
			ctx := context.Background()
			for i := range 5 {
				if _, err := cli.Put(ctx, prefix+"/rows/t/k"+fmt.Sprint(i)+"/other", "v"); err != nil {
					t.Error(err)
				}
			}
			if _, err := cli.Delete(ctx, prefix+"/rows/t/k0/other"); err != nil {
				t.Error(err)
			}
			resp, err := cli.Get(ctx, "x")
			if err == nil {
				_, err = cli.Compact(ctx, resp.Header.Revision)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() { testHookBeforeWatch = nil })
	gcfg := gossip.DefaultFastConfig("late")
	gcfg.Transport = gossiptest.NewNetwork(1).NewTransport("late")
	var logs lockedBuffer
	cfg := suiteConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e, err := NewEtcd(cfg, EtcdConfig{Endpoints: ec.Endpoints(), Prefix: prefix}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waitFor(t, "the node to show the 4 rows left after the compaction", 20*time.Second, func() bool {
		_, gone := e.Get("t", "k0")
		return len(e.List("t")) == 4 && !gone && e.Health().Up
	})
	if !strings.Contains(logs.String(), "compaction") {
		t.Errorf("the node did not say its watch fell behind the compaction; its log:\n%s", logs.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Over TLS with client certificates (etcd's --client-cert-auth): hosts
// with the CA and a client certificate share the tables; one without a
// client certificate gets nothing through and says why.
func TestEtcd_tls(t *testing.T) {
	etcdtest.Binary(t)
	files, err := etcdrun.WriteCerts(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ec := etcdtest.StartWith(t, etcdtest.Options{TLS: files})
	tc, err := files.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	b := backend{name: "etcd", open: func(t *testing.T, cfg Config, gcfg gossip.Config) Tables {
		e, err := NewEtcd(cfg, EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t), TLS: tc}, gcfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}}
	s := newSuite(t, b, 2, suiteConfig())
	mustPut(t, s.nodes[0], "t", "a", "over tls")
	s.waitEverywhere("t", "a", []byte("over tls"), s.names[0])

	noCert := tc.Clone()
	noCert.Certificates = nil
	gcfg := gossip.DefaultFastConfig("stranger")
	gcfg.Transport = s.net.NewTransport("stranger")
	e, err := NewEtcd(suiteConfig(), EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t), TLS: noCert, RequestTimeout: time.Second}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waitFor(t, "a host without a client certificate to say it cannot reach etcd", 20*time.Second, func() bool {
		h := e.Health()
		return !h.Up && h.Error != "" && h.Error != "not connected yet"
	})
	if _, ok := e.Get("t", "a"); ok {
		t.Error("a host without a client certificate read the tables")
	}
	t.Logf("without a client certificate: %s", e.Health().Error)
}

// A second host under a live host's name, with no state of its own, does
// not delete the live host's rows (its start deletes only rows of its own
// name that no other live lease holds) and does not take them for its own.
func TestEtcd_sameNameLeavesLiveRows(t *testing.T) {
	s, ec := etcdSuite(t, 2, EtcdConfig{})
	mustPut(t, s.nodes[0], "t", "a", "a")
	s.waitConverged(1)

	gcfg := gossip.DefaultFastConfig(s.names[0])
	gcfg.Transport = gossiptest.NewNetwork(1).NewTransport(s.names[0])
	twin, err := NewEtcd(suiteConfig(), EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t), LeaseTTL: 2 * time.Second}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	waitFor(t, "the twin to read the tables", 30*time.Second, func() bool { return twin.Health().Up })
	if rows := twin.List(""); len(rows) != 0 {
		t.Errorf("the twin took the live host's rows for its own: %+v", rows)
	}
	// The twin's start wrote whatever it wrote before it was up; a row
	// written after that reaches the other host behind any delete of it.
	mustPut(t, s.nodes[0], "t", "b", "b")
	s.waitEverywhere("t", "b", []byte("b"), s.names[0])
	if e, ok := s.nodes[1].Get("t", "a"); !ok || e.Owner != s.names[0] {
		t.Errorf("the live host's row went when a host under its name started: %+v %v", e, ok)
	}
}

// An agent whose etcd is not there at start says so in its log, with the
// endpoints, rather than starting in silence (health starts down, and a
// state is logged when it changes).
func TestEtcd_unreachableAtStartIsSaid(t *testing.T) {
	endpoint := deadEndpoint(t)
	var logs lockedBuffer
	cfg := suiteConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	etcdAlone(t, "alone", cfg, EtcdConfig{Endpoints: []string{endpoint}, Prefix: suitePrefix(t), RequestTimeout: 500 * time.Millisecond})
	waitFor(t, "the log to say etcd is unreachable", 20*time.Second, func() bool {
		return strings.Contains(logs.String(), "etcd store unreachable") && strings.Contains(logs.String(), endpoint)
	})
}

// TestEtcd_restartWhileDownServesLastTables: a host restarted while etcd
// is down serves the other hosts' rows it last read (persisted from
// OthersEntries, put back with InitialOthers), until etcd is read again,
// which replaces them: a row that is not in etcd goes.
func TestEtcd_restartWhileDownServesLastTables(t *testing.T) {
	s, ec := etcdSuite(t, 2, EtcdConfig{RequestTimeout: time.Second})
	mustPut(t, s.nodes[0], "t", "a", "a")
	mustPut(t, s.nodes[1], "t", "b", "b")
	s.waitConverged(2)
	others := s.nodes[0].OthersEntries()
	other := s.nodes[1].Node().Name()
	if len(others) != 1 || others[0].Key != "b" || others[0].Owner != other {
		t.Fatalf("OthersEntries of node 0: %+v, want t/b of %s alone", others, other)
	}
	ghost := Entry{Table: "t", Key: "ghost", Owner: "h9", Value: []byte("g"), Version: others[0].Version}
	name, own := s.nodes[0].Node().Name()+"-again", s.nodes[0].OwnRows()
	for i := range 3 {
		ec.Kill(i)
	}
	cfg := suiteConfig()
	cfg.InitialRows, cfg.InitialOthers = own, append(others, ghost)
	e := etcdAlone(t, name, cfg, EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t), RequestTimeout: time.Second})
	if got, ok := e.Get("t", "b"); !ok || got.Owner != other || string(got.Value) != "b" {
		t.Errorf("t/b after a restart with etcd down: %+v %v, want %s's", got, ok, other)
	}
	if _, ok := e.Get("t", "ghost"); !ok {
		t.Error("t/ghost, last read, is not served while etcd is down")
	}
	for i := range 3 {
		ec.Start(i)
	}
	ec.WaitHealthy()
	waitFor(t, "etcd read again: t/ghost gone, t/b kept", 30*time.Second, func() bool {
		_, g := e.Get("t", "ghost")
		b, ok := e.Get("t", "b")
		return !g && ok && b.Owner == other
	})
}

// TestEtcd_ownRowPutBackWhileDown: with etcd out of reach, a write of a
// row this host already holds as it is (put back at start) is done at
// once (the next resync writes it); a changed row or a new one is still
// refused as unavailable.
func TestEtcd_ownRowPutBackWhileDown(t *testing.T) {
	endpoint := deadEndpoint(t)
	cfg := suiteConfig()
	cfg.InitialRows = []Row{{Table: "t", Key: "mine", Value: []byte("v1")}}
	e := etcdAlone(t, "alone", cfg, EtcdConfig{Endpoints: []string{endpoint}, Prefix: suitePrefix(t), RequestTimeout: 300 * time.Millisecond})
	if en, err := e.Put("t", "mine", []byte("v1")); err != nil || string(en.Value) != "v1" || en.Owner != "alone" {
		t.Errorf("putting back an unchanged own row with etcd down: %+v, %v; want it done", en, err)
	}
	for _, c := range []struct{ key, value string }{{"mine", "v2"}, {"other", "v1"}} {
		if _, err := e.Put("t", c.key, []byte(c.value)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("put t/%s=%s with etcd down: %v, want ErrUnavailable", c.key, c.value, err)
		}
	}
}

// deadEndpoint is an etcd client URL where nothing listens.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // nothing listens there once it returns
	return "http://" + l.Addr().String()
}

// etcdAlone opens an etcd backend named name, alone in a gossip network
// of its own, closed when the test ends.
func etcdAlone(t *testing.T, name string, cfg Config, ecfg EtcdConfig) *Etcd {
	t.Helper()
	gcfg := gossip.DefaultFastConfig(name)
	gcfg.Transport = gossiptest.NewNetwork(1).NewTransport(name)
	e, err := NewEtcd(cfg, ecfg, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
