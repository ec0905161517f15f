package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/rediscoord" // registers redis:// and rediss://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// redisHarness runs the suite against a local single redis-server.
type redisHarness struct{ srv *local.Redis }

func (h redisHarness) Backend() string { return "redis" }
func (h redisHarness) URL() string     { return h.srv.URL }

func (h redisHarness) NewClient(t testing.TB, opts ...coord.Option) *coord.Client {
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

// ExpireSession deletes the session key and what it owns with the driver's
// kill script (driver.Expirer).
func (h redisHarness) ExpireSession(t testing.TB, s *coord.Session) {
	t.Helper()
	conformance.ExpireByDriver(t, s)
}

// TTL is short: the Redis heartbeat renews every TTL/3 from the client.
func (h redisHarness) TTL() time.Duration { return 2 * time.Second }

func TestRedis(t *testing.T) {
	srv := local.StartRedis(t)
	h := redisHarness{srv: srv}
	t.Run("Lock", func(t *testing.T) { conformance.RunLock(t, h) })
	t.Run("RWMutex", func(t *testing.T) { conformance.RunRWMutex(t, h) })
	t.Run("Semaphore", func(t *testing.T) { conformance.RunSemaphore(t, h) })
	t.Run("Election", func(t *testing.T) { conformance.RunElection(t, h) })
	t.Run("Barrier", func(t *testing.T) { conformance.RunBarrier(t, h) })
}
