package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/consulcoord" // registers consul://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// consulHarness runs the suite against a local single-node Consul agent.
type consulHarness struct{ agent *local.Consul }

func (h consulHarness) Backend() string { return "consul" }
func (h consulHarness) URL() string     { return h.agent.URL }

func (h consulHarness) NewClient(t testing.TB, opts ...coord.Option) *coord.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, h.agent.URL, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", h.agent.URL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h consulHarness) ExpireSession(t testing.TB, s *coord.Session) {
	t.Helper()
	conformance.ExpireByDriver(t, s)
}

// TTL is Consul's minimum session TTL.
func (h consulHarness) TTL() time.Duration { return 10 * time.Second }

// LossBound: Consul invalidates a session that is no longer renewed only
// after twice its TTL (counted from the last renewal), then deletes its keys;
// the extra 2s absorb the handoff on a busy machine.
func (h consulHarness) LossBound() time.Duration { return 2*h.TTL() + 2*time.Second }

func TestConsul(t *testing.T) {
	h := consulHarness{agent: local.StartConsul(t)}
	t.Run("Lock", func(t *testing.T) { conformance.RunLock(t, h) })
	t.Run("Election", func(t *testing.T) { conformance.RunElection(t, h) })
	t.Run("RWMutex", func(t *testing.T) { conformance.RunRWMutex(t, h) })
	t.Run("Semaphore", func(t *testing.T) { conformance.RunSemaphore(t, h) })
	t.Run("Barrier", func(t *testing.T) { conformance.RunBarrier(t, h) })
}
