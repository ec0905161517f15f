package etcdcoord

import (
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

// TestServerPaused freezes the server (SIGSTOP): connections stay open but
// nothing answers, so only the client-side deadline can end the session.
// After the server resumes, the client works again.
func TestServerPaused(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	const ttl = 2 * time.Second
	s1 := newSession(t, c, ttl)
	m1, _ := lock.NewMutex(s1, "paused")
	g1, err := m1.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := lock.NewMutex(newSession(t, c, ttl), "paused")
	errc := make(chan error, 1)
	go func() {
		_, err := m2.Lock(testCtx(t, 60*time.Second))
		errc <- err
	}()
	waitContenders(t, c, "paused", 2)
	paused := time.Now()
	e.Process.Pause()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			e.Process.Resume()
		}
	}
	defer resume()

	select {
	case <-g1.Done():
	case <-time.After(ttl + 2*time.Second):
		t.Fatalf("lock still held %v after the server froze (TTL %v)", time.Since(paused), ttl)
	}
	t.Logf("holder lost the lock %v after the server froze (TTL %v)", time.Since(paused).Round(time.Millisecond), ttl)
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(g1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("guard Err() = %v, want ErrLockLost and ErrSessionExpired", g1.Err())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, coord.ErrSessionExpired) {
			t.Fatalf("waiting Lock returned %v, want ErrSessionExpired", err)
		}
	case <-time.After(ttl + 3*time.Second):
		t.Fatal("waiting Lock still blocked after its session was lost")
	}

	resume()
	s3 := newSession(t, c, ttl)
	m3, _ := lock.NewMutex(s3, "paused")
	g3, err := m3.Lock(testCtx(t, 20*time.Second))
	if err != nil {
		t.Fatalf("lock after the server resumed: %v", err)
	}
	if g3.Token() <= g1.Token() {
		t.Fatalf("token %d after %d", g3.Token(), g1.Token())
	}
	if err := g3.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestServerRestartWithinTTL restarts the server (same data) faster than the
// TTL: the lease survives on the server, the keep-alive reconnects, and the
// holder and the waiter carry on as if nothing happened.
func TestServerRestartWithinTTL(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	const ttl = 8 * time.Second
	s1 := newSession(t, c, ttl)
	m1, _ := lock.NewMutex(s1, "restart")
	g1, err := m1.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := lock.NewMutex(newSession(t, c, ttl), "restart")
	got := make(chan *lock.Guard, 1)
	errc := make(chan error, 1)
	go func() {
		g, err := m2.Lock(testCtx(t, 60*time.Second))
		if err != nil {
			errc <- err
			return
		}
		got <- g
	}()
	waitContenders(t, c, "restart", 2)
	start := time.Now()
	e.Process.Kill()
	e.Restart(t)
	// Restart's cleanup (stopping the new process) runs before the earlier
	// cleanups: close the client first, so nothing waits for a stopped server.
	t.Cleanup(func() { _ = c.Close() })
	t.Logf("server back after %v (TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
	time.Sleep(time.Second) // let a keep-alive round trip over the new connection
	if err := s1.Err(); err != nil {
		t.Fatalf("session lost across a restart shorter than its TTL: %v", err)
	}
	if err := g1.Err(); err != nil {
		t.Fatalf("lock lost across a restart shorter than its TTL: %v", err)
	}
	select {
	case <-got:
		t.Fatal("waiter acquired while the holder still held")
	case err := <-errc:
		t.Fatalf("waiter failed across the restart: %v", err)
	default:
	}
	if err := g1.Unlock(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case g2 := <-got:
		if g2.Token() <= g1.Token() {
			t.Fatalf("token %d after %d", g2.Token(), g1.Token())
		}
		if err := g2.Unlock(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not acquire after the holder released (post-restart)")
	}
}
