package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
)

// URLHarness is a Harness for any running server reachable by a coord URL
// whose backend is registered (import its package) and whose driver
// implements driver.Expirer: clients come from coord.Open, each with its own
// connection, and sessions are expired on the server by the driver.
type URLHarness struct {
	// Name is the backend's name in reports ("etcd", "zookeeper", ...).
	Name string
	// Addr is the backend URL, secrets included.
	Addr string
	// SessionTTL is the session TTL the suite uses (the backend's minimum or
	// a little above).
	SessionTTL time.Duration
	// Bound is how soon a killed holder must be succeeded; zero means
	// SessionTTL + 1s.
	Bound time.Duration
}

// Backend implements Harness.
func (h URLHarness) Backend() string { return h.Name }

// URL implements Harness.
func (h URLHarness) URL() string { return h.Addr }

// TTL implements Harness.
func (h URLHarness) TTL() time.Duration { return h.SessionTTL }

// LossBound implements LossBounder.
func (h URLHarness) LossBound() time.Duration {
	if h.Bound > 0 {
		return h.Bound
	}
	return h.SessionTTL + time.Second
}

// NewClient opens a client of its own from the URL and closes it when t ends.
func (h URLHarness) NewClient(t testing.TB, opts ...coord.Option) *coord.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, h.Addr, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", h.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ExpireSession implements Harness with the driver's server-side expiry.
func (h URLHarness) ExpireSession(t testing.TB, s *coord.Session) {
	t.Helper()
	ExpireByDriver(t, s)
}
