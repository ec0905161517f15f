package rediscoord_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/backend/rediscoord"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/lock"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// openURL opens a coord client on url (closed when t ends).
func openURL(t testing.TB, url string, opts ...coord.Option) *coord.Client {
	t.Helper()
	c, err := coord.Open(ctxFor(t, 10*time.Second), url, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawClient is a plain go-redis client on addr, for looking at the keys.
func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func newSession(t testing.TB, c *coord.Client, ttl time.Duration) *coord.Session {
	t.Helper()
	s, err := c.NewSession(ctxFor(t, 10*time.Second), coord.SessionTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func newMutex(t testing.TB, s *coord.Session, name string) *lock.Mutex {
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
		t.Fatalf("lock %s: %v", m.Name(), err)
	}
	return g
}

func contenders(t testing.TB, c *coord.Client, name string) int {
	t.Helper()
	n, err := c.Driver().(driver.Inspector).Contenders(ctxFor(t, 5*time.Second), "lock", name)
	if err != nil {
		t.Fatalf("contenders: %v", err)
	}
	return n
}

// waitContenders polls the server's state (a test observation only) until
// lock name has want contender entries.
func waitContenders(t testing.TB, c *coord.Client, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := contenders(t, c, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %q: %d contender entries, want %d", name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockAsync runs m.Lock(ctx) in a goroutine and delivers its result.
type result struct {
	g   *lock.Guard
	err error
	at  time.Time
}

func lockAsync(ctx context.Context, m *lock.Mutex) <-chan result {
	ch := make(chan result, 1)
	go func() {
		g, err := m.Lock(ctx)
		ch <- result{g, err, time.Now()}
	}()
	return ch
}

func expectClosed(t testing.TB, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("%s: not done within %s", what, within)
	}
}

func expectErr(t testing.TB, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want it to wrap %v", err, target)
		}
	}
}

// proxy forwards TCP connections to a Redis server and can freeze them all
// (a network partition: bytes stop flowing, connections stay open).
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies src to dst, holding the data back while the proxy is frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.isFrozen() {
			time.Sleep(5 * time.Millisecond)
			if p.isClosed() {
				return
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

func (p *proxy) isFrozen() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.frozen }
func (p *proxy) isClosed() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.conns == nil }

// Freeze stops forwarding bytes in both directions.
func (p *proxy) Freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// newRedisClient returns a typed coord client over a go-redis client on addr.
func newRedisClient(t testing.TB, addr string, opts ...coord.Option) *coord.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := rediscoord.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
