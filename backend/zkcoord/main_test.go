package zkcoord

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
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

func TestZooKeeperSmoke(t *testing.T) {
	zks := local.StartZooKeeper(t)
	c := openClient(t, zks.URL)
	s1, s2 := newSession(t, c), newSession(t, c)
	t.Logf("sessions %s %s ttl %s", s1.ID(), s2.ID(), s1.TTL())
	g1, err := mutex(t, s1, "a/b").Lock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mutex(t, s2, "a/b").TryLock(ctxT(t, 5*time.Second)); !errorsIs(err, coord.ErrLocked) {
		t.Fatalf("trylock: %v", err)
	}
	got := make(chan *lock.Guard)
	go func() {
		g, err := mutex(t, s2, "a/b").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	time.Sleep(200 * time.Millisecond)
	if err := g1.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	g2 := <-got
	t.Logf("tokens %d %d", g1.Token(), g2.Token())
	if g2.Token() <= g1.Token() {
		t.Fatal("token")
	}
}
