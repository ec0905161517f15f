package rediscoord_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/barrier"
	"github.com/coordkit/coord/recipes/election"
	"github.com/coordkit/coord/recipes/lock"
)

func errAsync(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func expectNil(t testing.TB, ch <-chan error, within time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(within):
		t.Fatalf("%s: not done within %s", what, within)
	}
}

func expectBlocked(t testing.TB, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(150 * time.Millisecond):
	}
}

// A barrier whose holder's process died (its session key expires, no script
// runs) lets its waiters through within about one TTL, and can be raised again.
func TestBarrierOfADeadHolderGoesDown(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("bdead"))
	raw := rawClient(t, srv.Addr)
	const ttl = time.Second
	holder := newSession(t, c, 30*time.Second)
	b, err := barrier.New(holder, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Hold(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	other, err := barrier.New(newSession(t, c, ttl), "b")
	if err != nil {
		t.Fatal(err)
	}
	expectErr(t, other.Hold(ctxFor(t, 5*time.Second)), barrier.ErrExists)
	// The process "dies": its session key and barrier key expire unrenewed
	// (its heartbeat's next renewal is 10s away).
	for _, k := range []string{"bdead:session:" + holder.ID(), "bdead:barrier:{b}"} {
		if err := raw.PExpire(ctxFor(t, 5*time.Second), k, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waited := errAsync(func() error { return other.Wait(ctxFor(t, 10*time.Second)) })
	expectBlocked(t, waited, "Wait on a raised barrier")
	expectNil(t, waited, ttl+time.Second, "Wait after the holder died")
	if err := other.Hold(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("raise again after the holder died: %v", err)
	}
	waited = errAsync(func() error { return b.Wait(ctxFor(t, 10*time.Second)) })
	expectBlocked(t, waited, "Wait on a raised barrier")
	if err := b.Release(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	expectNil(t, waited, time.Second, "Wait after Release")
}

// A cancelled Enter removes its participant entry; a participant whose
// process died stops counting within about one TTL, so Leave returns; the
// last to leave lowers the ready marker and the name can be used again.
func TestDoubleBarrierCleanupAndReuse(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("dbar"))
	raw := rawClient(t, srv.Addr)
	const ttl = time.Second
	dbl := func(s *coord.Session) *barrier.DoubleBarrier {
		d, err := barrier.NewDouble(s, "d", 2)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cctx, cancel := context.WithCancel(context.Background())
	lone := dbl(newSession(t, c, ttl))
	entered := errAsync(func() error { return lone.Enter(cctx) })
	waitCount(t, c, "barrier", "d", 1)
	expectBlocked(t, entered, "Enter with 1 of 2 participants")
	cancel()
	select {
	case err := <-entered:
		expectErr(t, err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Enter did not return after its ctx was cancelled")
	}
	if n := count(t, c, "barrier", "d"); n != 0 {
		t.Fatalf("%d participant entries after a cancelled Enter, want 0", n)
	}

	for round := 0; round < 2; round++ {
		dying := newSession(t, c, 30*time.Second)
		a, b := dbl(newSession(t, c, ttl)), dbl(dying)
		ea := errAsync(func() error { return a.Enter(ctxFor(t, 10*time.Second)) })
		expectBlocked(t, ea, "Enter with 1 of 2 participants")
		if err := b.Enter(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		expectNil(t, ea, time.Second, "Enter once both are in")
		if round == 0 {
			// b's process dies: its session expires without any script
			// (its heartbeat's next renewal is 10s away).
			if err := raw.PExpire(ctxFor(t, 5*time.Second), "dbar:session:"+dying.ID(), ttl).Err(); err != nil {
				t.Fatal(err)
			}
		}
		left := errAsync(func() error { return a.Leave(ctxFor(t, 10*time.Second)) })
		expectBlocked(t, left, "Leave while the other participant is in")
		if round == 0 {
			expectNil(t, left, ttl+time.Second, "Leave after the other participant died")
		} else {
			if err := b.Leave(ctxFor(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			expectNil(t, left, time.Second, "Leave after everyone left")
		}
		if n, _ := raw.Exists(ctxFor(t, 5*time.Second), "dbar:dbarrier:{d}:ready").Result(); n != 0 {
			t.Fatalf("round %d: the ready marker is still up after everyone left", round)
		}
	}
}

// Closing a session removes at once everything it owned in every recipe
// (the owned set tracks it all) and wakes the waiters.
func TestSessionCloseRemovesEveryRecipeEntry(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("close"))
	raw := rawClient(t, srv.Addr)
	ctx := ctxFor(t, 20*time.Second)
	s := newSession(t, c, 30*time.Second)
	tm, err := newElection(t, s, "e").Campaign(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rw, _ := lock.NewRWMutex(s, "rw")
	rg, err := rw.RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sem, _ := lock.NewSemaphore(s, "sem", 1)
	sg, err := sem.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := barrier.New(s, "b")
	if err := b.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := barrier.NewDouble(s, "d", 2)
	entered := errAsync(func() error { return d.Enter(ctx) })
	waitCount(t, c, "barrier", "d", 1)

	other := newSession(t, c, 30*time.Second)
	nextLeader := campaignAsync(ctx, newElection(t, other, "e"), "next")
	wm, _ := lock.NewRWMutex(other, "rw")
	writer := guardAsync(ctx, wm.Lock)
	sem2, _ := lock.NewSemaphore(other, "sem", 1)
	permit := guardAsync(ctx, sem2.Acquire)
	ob, _ := barrier.New(other, "b")
	waited := errAsync(func() error { return ob.Wait(ctx) })
	waitCount(t, c, "election", "e", 2)
	waitCount(t, c, "rwlock", "rw", 2)
	waitCount(t, c, "semaphore", "sem", 2)

	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	expectErr(t, tm.Err(), election.ErrLeadershipLost, coord.ErrSessionClosed)
	expectErr(t, rg.Err(), lock.ErrLockLost, coord.ErrSessionClosed)
	expectErr(t, sg.Err(), lock.ErrLockLost, coord.ErrSessionClosed)
	select {
	case err := <-entered:
		expectErr(t, err, coord.ErrSessionClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("Enter did not return after its session closed")
	}
	select {
	case r := <-nextLeader:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(time.Second):
		t.Fatal("the next candidate was not elected at once")
	}
	expectGuard(t, writer, "writer after the reader's session closed")
	expectGuard(t, permit, "permit after the holder's session closed")
	expectNil(t, waited, time.Second, "barrier Wait after the holder's session closed")
	if n := count(t, c, "barrier", "d"); n != 0 {
		t.Fatalf("%d double-barrier participants left", n)
	}
	if n, _ := raw.Exists(ctx, "close:session:"+s.ID()+":owned").Result(); n != 0 {
		t.Fatal("the closed session's owned set is still there")
	}
}
