package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

// TestContendedHandoff runs workers on separate clients (separate
// connections, like separate processes) that take the lock in turns, and
// checks exclusion, strictly increasing tokens and that nothing is left.
func TestContendedHandoff(t *testing.T) {
	e := startEtcd(t)
	const workers, rounds = 6, 15
	var (
		inside, overlaps atomic.Int32
		mu               sync.Mutex
		tokens           []coord.Token
		wg               sync.WaitGroup
	)
	errc := make(chan error, workers)
	var last *coord.Client
	for w := 0; w < workers; w++ {
		c := openClient(t, e.URL)
		last = c
		m, _ := lock.NewMutex(newSession(t, c, 5*time.Second), "handoff")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				g, err := m.Lock(testCtx(t, 30*time.Second))
				if err != nil {
					errc <- err
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, g.Token())
				mu.Unlock()
				time.Sleep(500 * time.Microsecond)
				inside.Add(-1)
				if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d overlapping holders", n)
	}
	if len(tokens) != workers*rounds {
		t.Fatalf("%d acquisitions, want %d", len(tokens), workers*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("token %d after %d", tokens[i], tokens[i-1])
		}
	}
	if n := contenders(t, last, "handoff"); n != 0 {
		t.Fatalf("%d keys left after every worker released", n)
	}
}

// TestWaitersServedInQueueOrder queues waiters one after another and checks
// that each release hands the lock to the oldest waiter only: the others stay
// blocked (no herd), and the order is FIFO.
func TestWaitersServedInQueueOrder(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	holder, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "fifo")
	g, err := holder.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	acquired := make(chan int, n)
	guards := make([]*lock.Guard, n)
	for i := 0; i < n; i++ {
		m, _ := lock.NewMutex(newSession(t, openClient(t, e.URL), 10*time.Second), "fifo")
		go func() {
			g, err := m.Lock(testCtx(t, 30*time.Second))
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				acquired <- -1
				return
			}
			guards[i] = g
			acquired <- i
		}()
		waitContenders(t, c, "fifo", i+2) // queued strictly after waiter i-1
	}
	for i := 0; i < n; i++ {
		if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-acquired:
			if got != i {
				t.Fatalf("release %d went to waiter %d, want %d (FIFO)", i, got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no waiter acquired after release %d", i)
		}
		select {
		case got := <-acquired:
			t.Fatalf("waiter %d also acquired after release %d", got, i)
		case <-time.After(100 * time.Millisecond):
		}
		g = guards[i]
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestTryLockAndRelease(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s1, s2 := newSession(t, c, 5*time.Second), newSession(t, c, 5*time.Second)
	m1, _ := lock.NewMutex(s1, "try")
	m2, _ := lock.NewMutex(s2, "try")
	g1, err := m1.TryLock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.TryLock(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLocked", err)
	}
	if n := contenders(t, c, "try"); n != 1 {
		t.Fatalf("%d keys after a failed TryLock, want 1", n)
	}
	// A Mutex of the same session is a separate contender.
	m1b, _ := lock.NewMutex(s1, "try")
	if _, err := m1b.TryLock(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock by a second Mutex of the holder's session: %v, want ErrLocked", err)
	}
	if err := g1.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(g1.Err(), coord.ErrNotHeld) {
		t.Fatalf("Err() after Unlock = %v", g1.Err())
	}
	if err := g1.Unlock(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
		t.Fatalf("second Unlock: %v, want ErrNotHeld", err)
	}
	g2, err := m2.TryLock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if g2.Token() <= g1.Token() {
		t.Fatalf("token %d after %d", g2.Token(), g1.Token())
	}
	if err := g2.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestKeyDeletedByHandNoticedAtUnlock deletes the holder's key behind its
// back (an operator breaking the lock, outside the contract): the session
// lives on, so the guard is not told at once (a held lock watches nothing of
// its own); the waiter gets the lock, and the old holder's Unlock reports
// ErrNotHeld with the deleted key, not an expired session, as the cause.
func TestKeyDeletedByHandNoticedAtUnlock(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s1 := newSession(t, c, 10*time.Second)
	m1, _ := lock.NewMutex(s1, "stolen")
	g1, err := m1.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "stolen")
	got := make(chan *lock.Guard, 1)
	go func() {
		g, err := m2.Lock(testCtx(t, 20*time.Second))
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- g
	}()
	waitContenders(t, c, "stolen", 2)
	d := driverOf(t, c)
	first, err := d.cli.Get(testCtx(t, 5*time.Second), d.lockPrefix("stolen"), clientv3.WithFirstCreate()...)
	if err != nil || len(first.Kvs) != 1 {
		t.Fatalf("read the holder's key: %v", err)
	}
	if _, err := d.cli.Delete(testCtx(t, 5*time.Second), string(first.Kvs[0].Key)); err != nil {
		t.Fatal(err)
	}
	select {
	case g2, ok := <-got:
		if !ok {
			return
		}
		defer func() {
			if err := g2.Unlock(testCtx(t, 5*time.Second)); err != nil {
				t.Error(err)
			}
		}()
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not acquire after the holder's key was deleted")
	}
	if err := g1.Err(); err != nil {
		t.Fatalf("guard Err() = %v before Unlock: a deleted key is only noticed at Unlock", err)
	}
	err = g1.Unlock(testCtx(t, 5*time.Second))
	if !errors.Is(err, coord.ErrNotHeld) || !errors.Is(err, errKeyGone) || errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("Unlock of a lock whose key was deleted: %v, want ErrNotHeld for the deleted key", err)
	}
	select {
	case <-g1.Done():
	default:
		t.Fatal("guard not done after Unlock found its key gone")
	}
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(g1.Err(), errKeyGone) {
		t.Fatalf("guard Err() = %v, want ErrLockLost for the deleted key", g1.Err())
	}
	if err := s1.Err(); err != nil {
		t.Fatalf("session ended by a hand-deleted lock key: %v", err)
	}
}

// TestCancelledWaiterLeavesNothing cancels waiters queued in the middle of
// the queue and checks both that their keys are gone and that the queue
// behind them still works.
func TestCancelledWaiterLeavesNothing(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	g, err := func() (*lock.Guard, error) {
		m, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "cancel")
		return m.Lock(testCtx(t, 5*time.Second))
	}()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mid, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "cancel")
	midErr := make(chan error, 1)
	go func() { _, err := mid.Lock(ctx); midErr <- err }()
	waitContenders(t, c, "cancel", 2)
	tail, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "cancel")
	tailGot := make(chan error, 1)
	go func() {
		g, err := tail.Lock(testCtx(t, 20*time.Second))
		if err == nil {
			err = g.Unlock(testCtx(t, 5*time.Second))
		}
		tailGot <- err
	}()
	waitContenders(t, c, "cancel", 3)
	cancel()
	select {
	case err := <-midErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Lock: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Lock did not return")
	}
	waitContenders(t, c, "cancel", 2)
	select {
	case err := <-tailGot:
		t.Fatalf("tail waiter returned while the lock was held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-tailGot:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail waiter did not acquire after the cancelled waiter left and the holder released")
	}
	waitContenders(t, c, "cancel", 0)
}

// TestNestedNamesAreSeparateLocks checks that lock "a" and lock "a/b" do not
// share a queue although one name is a path prefix of the other.
func TestNestedNamesAreSeparateLocks(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s := newSession(t, c, 5*time.Second)
	mb, _ := lock.NewMutex(s, "a/b")
	gb, err := mb.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := lock.NewMutex(s, "a")
	ga, err := ma.TryLock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("lock \"a\" while \"a/b\" is held: %v", err)
	}
	if n := contenders(t, c, "a"); n != 1 {
		t.Fatalf("lock \"a\" counts %d contenders, want 1", n)
	}
	for _, g := range []*lock.Guard{ga, gb} {
		if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeoutDueToConnectionLost, true},
		{fmt.Errorf("wrapped: %w", rpctypes.ErrTooManyRequests), true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{rpctypes.ErrPermissionDenied, false},
		{rpctypes.ErrLeaseNotFound, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{status.Error(codes.InvalidArgument, "bad"), false},
	}
	for _, tc := range cases {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestContenderKeysReused checks the session's key pool: a released key's
// name is taken again by the session's next Lock, two live contenders of one
// session never share a name, and each incarnation has a new token.
func TestContenderKeysReused(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second).Driver()
	lockKey := func(try bool) *held {
		t.Helper()
		h, err := d.Lock(testCtx(t, 5*time.Second), s, "reuse", lockOpts(try))
		if err != nil {
			t.Fatal(err)
		}
		return h.(*held)
	}
	h1 := lockKey(false)
	if err := h1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	h2 := lockKey(false)
	if h2.key != h1.key {
		t.Fatalf("second Lock used %s, want the released %s", h2.key, h1.key)
	}
	if h2.Token() <= h1.Token() {
		t.Fatalf("reused key's token %d, want more than %d", h2.Token(), h1.Token())
	}
	// A second contender of the same session while h2 holds: a new name.
	if _, err := d.Lock(testCtx(t, 5*time.Second), s, "reuse", lockOpts(true)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock while held: %v, want ErrLocked", err)
	}
	got := make(chan *held, 1)
	go func() {
		h, err := d.Lock(testCtx(t, 10*time.Second), s, "reuse", lockOpts(false))
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- h.(*held)
	}()
	waitContenders(t, c, "reuse", 2)
	if err := h2.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	h3, ok := <-got
	if !ok {
		return
	}
	if h3.key == h2.key {
		t.Fatalf("a waiter queued while %s was held used the same name", h2.key)
	}
	if h3.Token() <= h2.Token() {
		t.Fatalf("token %d after %d", h3.Token(), h2.Token())
	}
	if err := h3.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := contenders(t, c, "reuse"); n != 0 {
		t.Fatalf("%d keys left, want 0", n)
	}
}
