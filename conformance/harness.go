// Package conformance is coord's shared contract suite: every recipe's
// user-visible guarantees (../SPEC.md), written once and run against each
// backend through a Harness. A backend author implements Harness for a real
// server and calls the Run functions from a test:
//
//	func TestConformance(t *testing.T) { conformance.RunLock(t, myHarness) }
//
// The suite never uses fakes: a Harness connects to a real server (a local
// process from package local, a container, or a user's cluster).
package conformance

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Harness connects the suite to one running backend.
type Harness interface {
	// Backend names the backend ("etcd", "zookeeper", "redis", "consul").
	Backend() string
	// URL is the backend URL (secrets included) for coordctl subprocesses.
	URL() string
	// NewClient returns a client with its own connection to the backend. The
	// harness closes it when t ends.
	NewClient(t testing.TB, opts ...coord.Option) *coord.Client
	// ExpireSession makes the server expire s as if its process had stopped
	// renewing it, and returns once the server has done so.
	ExpireSession(t testing.TB, s *coord.Session)
	// TTL is the shortest session TTL the suite should use on this backend
	// (Consul's minimum is 10s; others can go lower).
	TTL() time.Duration
}

// ExpireByDriver implements Harness.ExpireSession for backends whose driver
// implements driver.Expirer.
func ExpireByDriver(t testing.TB, s *coord.Session) {
	t.Helper()
	e, ok := s.Client().Driver().(driver.Expirer)
	if !ok {
		t.Fatalf("%s driver does not implement driver.Expirer", s.Client().Backend())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.ExpireSession(ctx, s.ID()); err != nil {
		t.Fatalf("expire session %s: %v", s.ID(), err)
	}
}

// uniqueNamespace gives each test its own namespace so tests sharing one
// server never see each other's keys.
func uniqueNamespace(t testing.TB) string {
	return fmt.Sprintf("conf-%d-%d", time.Now().UnixNano(), nsSeq.Add(1))
}

var nsSeq atomic.Int64

// RunAll runs every recipe contract against h.
func RunAll(t *testing.T, h Harness) {
	t.Run("Lock", func(t *testing.T) { RunLock(t, h) })
	t.Run("RWMutex", func(t *testing.T) { RunRWMutex(t, h) })
	t.Run("Semaphore", func(t *testing.T) { RunSemaphore(t, h) })
	t.Run("Election", func(t *testing.T) { RunElection(t, h) })
	t.Run("Barrier", func(t *testing.T) { RunBarrier(t, h) })
}
