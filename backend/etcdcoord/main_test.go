package etcdcoord

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startEtcd runs a real etcd server (a `coordctl dev` process) for t.
func startEtcd(t *testing.T) *local.Etcd {
	t.Helper()
	return local.StartEtcd(t)
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// openClient opens a coord client on url with a namespace of its own.
func openClient(t testing.TB, url string, opts ...coord.Option) *coord.Client {
	t.Helper()
	opts = append([]coord.Option{coord.WithNamespace("t-" + t.Name())}, opts...)
	c, err := coord.Open(testCtx(t, 10*time.Second), url, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newSession(t testing.TB, c *coord.Client, ttl time.Duration) *coord.Session {
	t.Helper()
	s, err := c.NewSession(testCtx(t, 10*time.Second), coord.SessionTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// driverOf returns the etcd driver behind c.
func driverOf(t testing.TB, c *coord.Client) *client {
	t.Helper()
	d, ok := c.Driver().(*client)
	if !ok {
		t.Fatalf("driver is %T, want *etcdcoord.client", c.Driver())
	}
	return d
}

// contenders counts the lock's keys on the server.
func contenders(t testing.TB, c *coord.Client, name string) int {
	t.Helper()
	n, err := driverOf(t, c).Contenders(testCtx(t, 5*time.Second), "lock", name)
	if err != nil {
		t.Fatalf("contenders: %v", err)
	}
	return n
}

// waitContenders polls (a test observation only) until name has want keys.
func waitContenders(t testing.TB, c *coord.Client, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := contenders(t, c, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %q: %d contender keys, want %d", name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lockOpts(try bool) driver.LockOptions { return driver.LockOptions{Try: try} }
