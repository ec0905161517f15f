package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/zkcoord" // registers zk:// and zks://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// zkHarness runs the suite against a local standalone ZooKeeper.
type zkHarness struct{ srv *local.ZooKeeper }

func (h zkHarness) Backend() string { return "zookeeper" }
func (h zkHarness) URL() string     { return h.srv.URL }

func (h zkHarness) NewClient(t testing.TB, opts ...coord.Option) *coord.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, h.srv.URL, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", h.srv.URL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ExpireSession has the server close the ZooKeeper session (the driver
// attaches to it with its ID and password and sends closeSession, as
// Curator's KillSession does; driver.Expirer).
func (h zkHarness) ExpireSession(t testing.TB, s *coord.Session) {
	t.Helper()
	conformance.ExpireByDriver(t, s)
}

// TTL is the ZooKeeper session timeout; the local server grants 1s..60s.
func (h zkHarness) TTL() time.Duration { return 2 * time.Second }

func TestZooKeeper(t *testing.T) {
	srv := local.StartZooKeeper(t)
	h := zkHarness{srv: srv}
	t.Run("Lock", func(t *testing.T) { conformance.RunLock(t, h) })
	t.Run("RWMutex", func(t *testing.T) { conformance.RunRWMutex(t, h) })
	t.Run("Semaphore", func(t *testing.T) { conformance.RunSemaphore(t, h) })
	t.Run("Election", func(t *testing.T) { conformance.RunElection(t, h) })
	t.Run("Barrier", func(t *testing.T) { conformance.RunBarrier(t, h) })
}
