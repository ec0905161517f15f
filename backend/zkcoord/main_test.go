package zkcoord

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTTL is the session TTL of these tests (the local server grants 1s..60s).
const testTTL = 2 * time.Second

// open opens a client on url, closed when t ends.
func openClient(t testing.TB, url string, opts ...coord.Option) *coord.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, url, append([]coord.Option{coord.WithTTL(testTTL)}, opts...)...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newSession opens a session, closed when t ends.
func newSession(t testing.TB, c *coord.Client) *coord.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func mutex(t testing.TB, s *coord.Session, name string) *lock.Mutex {
	t.Helper()
	m, err := lock.NewMutex(s, name)
	if err != nil {
		t.Fatalf("mutex %s: %v", name, err)
	}
	return m
}

// waitDone waits up to d for ch to close and returns how long it took.
func waitDone(t testing.TB, ch <-chan struct{}, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: not done after %s", what, d)
		return d
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
