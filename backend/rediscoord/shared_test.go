package rediscoord_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

func guardAsync(ctx context.Context, f func(context.Context) (*lock.Guard, error)) <-chan result {
	ch := make(chan result, 1)
	go func() {
		g, err := f(ctx)
		ch <- result{g, err, time.Now()}
	}()
	return ch
}

func expectPending(t testing.TB, ch <-chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned while it should wait: %v", what, r.err)
	case <-time.After(150 * time.Millisecond):
	}
}

func expectGuard(t testing.TB, ch <-chan result, what string) *lock.Guard {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r.g
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not acquired", what)
		return nil
	}
}

func unlock(t testing.TB, g *lock.Guard) {
	t.Helper()
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// Read-write lock order: W1 holds; R1, W2, R2 queue. W1's release admits
// R1 only (R2 is behind W2), R1's release admits W2, W2's release admits R2;
// each token is greater than those of the holders it excludes.
func TestRWLockServesInArrivalOrder(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("rw"))
	rw := func() *lock.RWMutex {
		m, err := lock.NewRWMutex(newSession(t, c, 10*time.Second), "l")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx := ctxFor(t, 30*time.Second)
	w1, err := rw().Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r1 := guardAsync(ctx, rw().RLock)
	waitCount(t, c, "rwlock", "l", 2)
	w2 := guardAsync(ctx, rw().Lock)
	waitCount(t, c, "rwlock", "l", 3)
	r2 := guardAsync(ctx, rw().RLock)
	waitCount(t, c, "rwlock", "l", 4)
	if _, err := rw().TryRLock(ctx); err == nil {
		t.Fatal("TryRLock succeeded behind a writer")
	} else {
		expectErr(t, err, lock.ErrLocked)
	}
	expectPending(t, r1, "a reader behind a held writer")
	unlock(t, w1)
	g1 := expectGuard(t, r1, "the reader after the writer")
	expectPending(t, r2, "a reader behind a waiting writer")
	expectPending(t, w2, "a writer behind a reader")
	if g1.Token() <= w1.Token() {
		t.Fatalf("reader token %d not above the writer's %d", g1.Token(), w1.Token())
	}
	unlock(t, g1)
	g2 := expectGuard(t, w2, "the second writer")
	expectPending(t, r2, "a reader behind a held writer")
	unlock(t, g2)
	g3 := expectGuard(t, r2, "the last reader")
	if !(g3.Token() > g2.Token() && g2.Token() > g1.Token()) {
		t.Fatalf("tokens %d, %d, %d not increasing", g1.Token(), g2.Token(), g3.Token())
	}
	unlock(t, g3)
	waitCount(t, c, "rwlock", "l", 0)
}

// A semaphore release admits exactly the next waiter (herd-free: the other
// waiters stay in BLPOP), and a holder whose session is closed frees its
// permit at once.
func TestSemaphoreHandsOverOnePermitPerRelease(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("sem"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second
	sem := func(s *coord.Session) *lock.Semaphore {
		m, err := lock.NewSemaphore(s, "s", 2)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx := ctxFor(t, 30*time.Second)
	warm := sem(newSession(t, c, ttl))
	if g, err := warm.Acquire(ctx); err != nil {
		t.Fatal(err)
	} else {
		unlock(t, g)
	}
	h1, err := warm.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSession(t, c, ttl)
	h2, err := sem(s2).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	waiting := make([]<-chan result, n)
	for i := range waiting {
		waiting[i] = guardAsync(ctx, sem(newSession(t, c, ttl)).Acquire)
		waitCount(t, c, "semaphore", "s", 3+i)
	}
	time.Sleep(100 * time.Millisecond)
	scripts0, blpops0 := scriptCalls(t, raw)
	unlock(t, h1)
	g0 := expectGuard(t, waiting[0], "the first waiter")
	time.Sleep(100 * time.Millisecond)
	scripts1, blpops1 := scriptCalls(t, raw)
	if d := scripts1 - scripts0; d != 2 {
		t.Fatalf("one hand-over ran %d scripts, want 2 (release + the next waiter's acquire)", d)
	}
	if d := blpops1 - blpops0; d != 0 {
		t.Fatalf("%d waiters went back to BLPOP after one release (stampede)", d)
	}
	expectPending(t, waiting[1], "the second waiter")
	if g0.Token() <= h2.Token() {
		t.Fatalf("token %d not above the earlier holder's %d", g0.Token(), h2.Token())
	}
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, h2.Done(), time.Second, "holding of the closed session")
	g1 := expectGuard(t, waiting[1], "the waiter after a holder's session closed")
	expectPending(t, waiting[2], "the third waiter")
	unlock(t, g0)
	g2 := expectGuard(t, waiting[2], "the third waiter")
	unlock(t, g1)
	unlock(t, g2)
	waitCount(t, c, "semaphore", "s", 0)
}

// A holder whose process died (its session key expires on its own, no
// script runs) is passed over within about one TTL by the waiter's timed
// re-check.
func TestSemaphoreDeadHolderExpires(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("semdead"))
	raw := rawClient(t, srv.Addr)
	const ttl = time.Second
	dead := newSession(t, c, 30*time.Second)
	if _, err := lockSemaphore(t, dead).Acquire(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Simulate a dead process: the session key gets a short TTL and is no
	// longer renewed (its heartbeat would renew it to 30s: stop it by
	// making the key expire before the next renewal, 10s away).
	if err := raw.PExpire(ctxFor(t, 5*time.Second), "semdead:session:"+dead.ID(), ttl).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g, err := lockSemaphore(t, newSession(t, c, ttl)).Acquire(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > ttl+500*time.Millisecond {
		t.Fatalf("acquired %s after the holder's session key expired, want within TTL", d)
	}
	unlock(t, g)
}

func lockSemaphore(t testing.TB, s *coord.Session) *lock.Semaphore {
	t.Helper()
	m, err := lock.NewSemaphore(s, "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
