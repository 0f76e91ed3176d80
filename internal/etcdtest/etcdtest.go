// Package etcdtest runs a real etcd cluster for tests (internal/etcdrun):
// Debian's etcd-server, each member a process with its own data directory
// under the test's, stopped when the test ends. Tests that need it skip
// with a clear message when the binary is missing.
package etcdtest

import (
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/etcdrun"
)

// Options place a cluster; see etcdrun.Options (Dir is the test's).
type Options = etcdrun.Options

// Cluster is a running etcd cluster whose failures fail the test.
type Cluster struct {
	*etcdrun.Cluster
	t testing.TB
}

// Binary returns the etcd binary, or skips t.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := etcdrun.Binary()
	if err != nil {
		t.Skipf("%v: skipping the etcd backend's tests", err)
	}
	return bin
}

// Start starts an n-member cluster on loopback; see StartWith.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, Options{Members: n})
}

// StartWith starts a cluster as opts say and waits until every member
// answers; it is killed when t ends.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	Binary(t)
	opts.Dir = t.TempDir()
	c, err := etcdrun.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c, t: t}
}

// Start starts member i again (after Kill), with its data.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if err := c.StartMember(i); err != nil {
		c.t.Fatal(err)
	}
}

// WaitHealthy waits until every running member is healthy, or fails the
// test after 30 s with the member's log.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	if err := c.Cluster.WaitHealthy(30 * time.Second); err != nil {
		c.t.Fatal(err)
	}
}
