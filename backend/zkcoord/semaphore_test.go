package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

type acquired struct {
	i int
	g *lock.Guard
}

// Permits go in queue order, and each release wakes one waiter: the first
// waiter watches the holders, later waiters only their predecessor, and a
// waiter that becomes a holder hands the first-waiter role on by writing to
// its node.
func TestSemaphoreFIFOAndHerdFree(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	const limit, n = 2, 5
	name := "sem"
	sessions := make([]*coord.Session, n)
	got := make(chan acquired, n)
	for i := range sessions {
		sessions[i] = newSession(t, c)
		m, err := lock.NewSemaphore(sessions[i], name, limit)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			g, err := m.Acquire(ctxT(t, 20*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			got <- acquired{i, g}
		}()
		waitCount(t, c, "semaphore", name, i+1)
	}
	guards := map[int]*lock.Guard{}
	for range limit {
		a := recv(t, got, 5*time.Second, "holder")
		guards[a.i] = a.g
	}
	if guards[0] == nil || guards[1] == nil {
		t.Fatalf("holders %v, want 0 and 1", guards)
	}
	q := queueNodes(t, srv.Addr, "/coord/semaphore/"+name, kindSem)
	id := func(i int) string { return sessions[i].ID() }
	waitWatches(t, srv.Addr, map[string][]string{
		id(0): nil, id(1): nil, // holders set no watch (the session is the truth)
		id(2): {q[0], q[1]},          // the first waiter watches the holders
		id(3): {q[2]}, id(4): {q[3]}, // later waiters their predecessor
	})
	notYet(t, got, 50*time.Millisecond, "a third holder")

	var last *lock.Guard = guards[1]
	for next := limit; next < n; next++ {
		// Release the oldest holder: exactly the first waiter proceeds.
		oldest := next - limit
		if err := guards[oldest].Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		a := recv(t, got, 5*time.Second, "next holder")
		if a.i != next {
			t.Fatalf("waiter %d got the permit, want %d (FIFO)", a.i, next)
		}
		if a.g.Token() <= last.Token() {
			t.Fatalf("token %d after %d", a.g.Token(), last.Token())
		}
		guards[a.i], last = a.g, a.g
		notYet(t, got, 50*time.Millisecond, "a holder beyond the limit")
		if next+1 < n { // the next waiter now watches the two holders
			waitWatches(t, srv.Addr, map[string][]string{id(next + 1): {q[next-1], q[next]}})
		}
	}
	for i := n - limit; i < n; i++ {
		if err := guards[i].Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, c, "semaphore", name, 0)
}

// A waiter that gave up (Try, cancelled) leaves no node, and a holder whose
// session is closed frees its permit at once.
func TestSemaphoreCleanupAndSessionClose(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	name := "sem2"
	sem := func(s *coord.Session) *lock.Semaphore {
		m, err := lock.NewSemaphore(s, name, 1)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sa := newSession(t, c)
	if _, err := sem(sa).Acquire(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	sb := newSession(t, c)
	if _, err := sem(sb).TryAcquire(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryAcquire = %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := sem(sb).Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want DeadlineExceeded", err)
	}
	if n := count(t, c, "semaphore", name); n != 1 {
		t.Fatalf("%d entries after a refused and a cancelled Acquire", n)
	}
	got := make(chan time.Time, 1)
	go func() {
		if _, err := sem(sb).Acquire(ctxT(t, 10*time.Second)); err != nil {
			t.Error(err)
		}
		got <- time.Now()
	}()
	waitCount(t, c, "semaphore", name, 2)
	start := time.Now()
	if err := sa.Close(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, got, 5*time.Second, "waiter").Sub(start); d > testTTL/2 {
		t.Fatalf("permit passed %v after the holder's session closed", d)
	}
}
