package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/etcdcoord" // registers etcd:// and etcds://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// etcdHarness runs the suite against a single-member etcd run as a separate
// `coordctl dev` process.
type etcdHarness struct{ srv *local.Etcd }

func (h etcdHarness) Backend() string { return "etcd" }
func (h etcdHarness) URL() string     { return h.srv.URL }

// NewClient opens a client of its own (its own gRPC connection) from the URL.
func (h etcdHarness) NewClient(t testing.TB, opts ...coord.Option) *coord.Client {
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

// ExpireSession revokes the session's lease (driver.Expirer).
func (h etcdHarness) ExpireSession(t testing.TB, s *coord.Session) {
	t.Helper()
	conformance.ExpireByDriver(t, s)
}

// TTL is etcd's minimum lease TTL with default server settings.
func (h etcdHarness) TTL() time.Duration { return 2 * time.Second }

func TestEtcd(t *testing.T) {
	h := etcdHarness{srv: local.StartEtcd(t)}
	t.Run("Lock", func(t *testing.T) { conformance.RunLock(t, h) })
	t.Run("RWMutex", func(t *testing.T) { conformance.RunRWMutex(t, h) })
	t.Run("Semaphore", func(t *testing.T) { conformance.RunSemaphore(t, h) })
	t.Run("Election", func(t *testing.T) { conformance.RunElection(t, h) })
	t.Run("Barrier", func(t *testing.T) { conformance.RunBarrier(t, h) })
}
