package consulcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/barrier"
)

func newBarrier(t testing.TB, s *coord.Session, name string) *barrier.Barrier {
	t.Helper()
	b, err := barrier.New(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newDouble(t testing.TB, s *coord.Session, name string, n int) *barrier.DoubleBarrier {
	t.Helper()
	d, err := barrier.NewDouble(s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// async runs f in the background and delivers its error.
func async(t testing.TB, d time.Duration, f func(ctx context.Context) error) <-chan error {
	errc := make(chan error, 1)
	ctx := ctxFor(t, d)
	go func() { errc <- f(ctx) }()
	return errc
}

func notReturned(t testing.TB, errc <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errc:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(300 * time.Millisecond):
	}
}

func returned(t testing.TB, errc <-chan error, what string) {
	t.Helper()
	if err := within(t, errc, 5*time.Second, what); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testBarrierHoldRelease(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s := newSession(t, c)
	b := newBarrier(t, s, "b")
	ctx := ctxFor(t, 10*time.Second)
	if err := b.Wait(ctx); err != nil {
		t.Fatalf("Wait on a barrier never raised: %v", err)
	}
	if err := b.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Hold(ctx); !errors.Is(err, coord.ErrExists) {
		t.Fatalf("Hold by the same session again: %v, want ErrExists", err)
	}
	other := newBarrier(t, newSession(t, c), "b")
	if err := other.Hold(ctx); !errors.Is(err, coord.ErrExists) {
		t.Fatalf("Hold by another session: %v, want ErrExists", err)
	}
	waits := async(t, 30*time.Second, other.Wait)
	notReturned(t, waits, "Wait on a raised barrier")
	if err := other.Release(ctx); err != nil { // anyone may lower it
		t.Fatal(err)
	}
	returned(t, waits, "Wait after Release")
	if err := b.Release(ctx); err != nil {
		t.Fatalf("Release of a lowered barrier: %v", err)
	}
	// Raised again and lowered by closing the owner's session.
	if err := b.Hold(ctx); err != nil {
		t.Fatalf("Hold after Release: %v", err)
	}
	waits = async(t, 30*time.Second, other.Wait)
	notReturned(t, waits, "Wait on a raised barrier")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	returned(t, waits, "Wait after the holder's session closed")
}

// A participant arriving once the barrier is open passes at once; after
// everyone left, the name starts a fresh round that blocks again.
func testDoubleLateAndReuse(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	p := func() *barrier.DoubleBarrier { return newDouble(t, newSession(t, c), "d", 2) }
	for round := 0; round < 2; round++ {
		p1, p2, late := p(), p(), p()
		e1 := async(t, 30*time.Second, p1.Enter)
		waitRecipe(t, c, "barrier", "d", 1)
		notReturned(t, e1, "Enter with 1 of 2 participants")
		returned(t, async(t, 30*time.Second, p2.Enter), "second Enter")
		returned(t, e1, "first Enter after the second arrived")
		returned(t, async(t, 30*time.Second, late.Enter), "Enter after the barrier opened")
		l1 := async(t, 30*time.Second, p1.Leave)
		l2 := async(t, 30*time.Second, p2.Leave)
		notReturned(t, l1, "Leave while a participant is inside")
		notReturned(t, l2, "Leave while a participant is inside")
		returned(t, async(t, 30*time.Second, late.Leave), "last Leave")
		returned(t, l1, "Leave after all left")
		returned(t, l2, "Leave after all left")
		if keys := keysUnder(t, cli, ns+"/"); len(keys) != 0 {
			t.Fatalf("round %d: keys left after everyone left: %v", round, keys)
		}
	}
}

func testDoubleCancelled(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	d := newDouble(t, newSession(t, c), "c", 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Enter(ctx) }()
	waitRecipe(t, c, "barrier", "c", 1)
	cancel()
	if err := within(t, errc, 5*time.Second, "cancelled Enter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Enter: %v, want context.Canceled", err)
	}
	waitRecipe(t, c, "barrier", "c", 0)
}

// A barrier whose holder's session ended with a lock-delay can be raised
// again once Consul's lock-delay on its key has passed: Hold waits it out.
func testBarrierLockDelay(t *testing.T, a *local.Consul, _ *api.Client) {
	const delay = 2 * time.Second
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s1 := newSession(t, c, coord.SessionLockDelay(delay))
	if err := newBarrier(t, s1, "ld").Hold(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := newBarrier(t, newSession(t, c), "ld").Hold(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Hold after the holder's session closed: %v", err)
	}
	if took := time.Since(start); took < delay-500*time.Millisecond || took > delay+2*time.Second {
		t.Fatalf("Hold took %s; want about the %s lock-delay", took, delay)
	}
}
