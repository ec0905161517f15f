package consulcoord

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

var nsSeq atomic.Int64

// uniqueNS gives each test its own namespace on a shared agent.
func uniqueNS(t testing.TB) string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, nsSeq.Add(1))
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// openURL opens a coord client on rawURL and closes it when t ends.
func openURL(t testing.TB, rawURL string, opts ...coord.Option) *coord.Client {
	t.Helper()
	c, err := coord.Open(ctxFor(t, 10*time.Second), rawURL, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// countingTransport counts the KV and transaction requests a native client
// sends (not the session's renewals and watch).
type countingTransport struct {
	*http.Transport
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/v1/session/") {
		c.n.Add(1)
	}
	return c.Transport.RoundTrip(r)
}

// nativeClient returns a Consul API client for addr whose idle connections
// are closed when t ends, and its request counter.
func nativeClient(t testing.TB, addr string) (*api.Client, *countingTransport) {
	t.Helper()
	ct := &countingTransport{Transport: newTransport()}
	cli, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ct.CloseIdleConnections)
	return cli, ct
}

func newSession(t testing.TB, c *coord.Client, opts ...coord.SessionOption) *coord.Session {
	t.Helper()
	s, err := c.NewSession(ctxFor(t, 10*time.Second), opts...)
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
		t.Fatal(err)
	}
	return m
}

func mustLock(t testing.TB, m *lock.Mutex) *lock.Guard {
	t.Helper()
	g, err := m.Lock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	return g
}

// lockAsync starts m.Lock in the background; the result arrives on the
// returned channels.
func lockAsync(t testing.TB, m *lock.Mutex, d time.Duration) (<-chan *lock.Guard, <-chan error) {
	got, errc := make(chan *lock.Guard, 1), make(chan error, 1)
	ctx := ctxFor(t, d)
	go func() {
		g, err := m.Lock(ctx)
		if err != nil {
			errc <- err
			return
		}
		got <- g
	}()
	return got, errc
}

func contenders(t testing.TB, c *coord.Client, name string) int {
	t.Helper()
	n, err := c.Driver().(*client).Contenders(ctxFor(t, 5*time.Second), "lock", name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitContenders polls the server (a test observation only) until name has
// want contender keys.
func waitContenders(t testing.TB, c *coord.Client, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := contenders(t, c, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %q: %d contenders, want %d", name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// within fails t unless ch delivers within d.
func within[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %s", what, d)
	}
	var zero T
	return zero
}

func closedWithin(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not closed within %s", what, d)
	}
}

func keysUnder(t testing.TB, cli *api.Client, prefix string) []string {
	t.Helper()
	keys, _, err := cli.KV().Keys(prefix, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
