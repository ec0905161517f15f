package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/barrier"
)

// RunBarrier runs the barrier contract (SPEC §6) against h.
func RunBarrier(t *testing.T, h Harness) {
	t.Run("WaitReturnsOnRelease", func(t *testing.T) { barrierWait(t, h) })
	t.Run("HolderSessionLossLowersIt", func(t *testing.T) { barrierLoss(t, h) })
	t.Run("DoubleBarrierEnterAndLeaveTogether", func(t *testing.T) { doubleTogether(t, h) })
	t.Run("DoubleBarrierLostParticipantDoesNotBlock", func(t *testing.T) { doubleLost(t, h) })
}

func newBarrier(t testing.TB, s *coord.Session, name string) *barrier.Barrier {
	t.Helper()
	b, err := barrier.New(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitAll runs n calls of f and returns a channel closed when all returned,
// plus a channel of their errors.
func waitAll(n int, f func(i int) error) (chan struct{}, chan error) {
	done := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f(i); err != nil {
				errs <- err
			}
		}(i)
	}
	go func() { wg.Wait(); close(done); close(errs) }()
	return done, errs
}

func stillBlocked(t testing.TB, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s returned early", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func returnsSoon(t testing.TB, done chan struct{}, errs chan error, within time.Duration, what string) {
	t.Helper()
	select {
	case <-done:
		for err := range errs {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(within):
		t.Fatalf("%s did not return within %v", what, within)
	}
}

func barrierWait(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	s := newSession(t, h, c)
	if err := newBarrier(t, s, "never").Wait(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("Wait on a barrier never held: %v", err)
	}
	b := newBarrier(t, s, "gate")
	if err := b.Hold(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := newBarrier(t, newSession(t, h, c), "gate").Hold(ctxFor(t, 10*time.Second)); !errors.Is(err, barrier.ErrExists) {
		t.Fatalf("second Hold: %v, want ErrExists", err)
	}
	done, errs := waitAll(3, func(int) error {
		return newBarrier(t, newSession(t, h, c), "gate").Wait(ctxFor(t, time.Minute))
	})
	stillBlocked(t, done, "Wait on a held barrier")
	if err := newBarrier(t, newSession(t, h, c), "gate").Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	returnsSoon(t, done, errs, 10*time.Second, "Wait after Release")
	if err := b.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Release of a lowered barrier: %v, want nil", err)
	}
}

func barrierLoss(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	s := newSession(t, h, c)
	if err := newBarrier(t, s, "gate").Hold(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	done, errs := waitAll(1, func(int) error {
		return newBarrier(t, newSession(t, h, c), "gate").Wait(ctxFor(t, time.Minute))
	})
	stillBlocked(t, done, "Wait on a held barrier")
	h.ExpireSession(t, s)
	returnsSoon(t, done, errs, 3*h.TTL()+5*time.Second, "Wait after the holder's session expired")
}

func newDouble(t testing.TB, s *coord.Session, name string, n int) *barrier.DoubleBarrier {
	t.Helper()
	d, err := barrier.NewDouble(s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func doubleTogether(t *testing.T, h Harness) {
	const n = 3
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	for round := 0; round < 2; round++ { // the name is reusable once everyone left
		ps := make([]*barrier.DoubleBarrier, n)
		for i := range ps {
			ps[i] = newDouble(t, newSession(t, h, c), "double", n)
		}
		first, ferrs := waitAll(n-1, func(i int) error { return ps[i].Enter(ctxFor(t, time.Minute)) })
		waitRecipeContenders(t, c, "barrier", "double", n-1, 10*time.Second)
		stillBlocked(t, first, fmt.Sprintf("round %d: Enter with %d of %d participants", round, n-1, n))
		if err := ps[n-1].Enter(ctxFor(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		returnsSoon(t, first, ferrs, 10*time.Second, fmt.Sprintf("round %d: Enter once all %d entered", round, n))
		leaving, lerrs := waitAll(n-1, func(i int) error { return ps[i].Leave(ctxFor(t, time.Minute)) })
		stillBlocked(t, leaving, fmt.Sprintf("round %d: Leave while a participant is still in", round))
		if err := ps[n-1].Leave(ctxFor(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		returnsSoon(t, leaving, lerrs, 10*time.Second, fmt.Sprintf("round %d: Leave once all left", round))
		waitRecipeContenders(t, c, "barrier", "double", 0, 5*time.Second)
	}
}

func doubleLost(t *testing.T, h Harness) {
	const n = 3
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	sessions := make([]*coord.Session, n)
	ps := make([]*barrier.DoubleBarrier, n)
	for i := range ps {
		sessions[i] = newSession(t, h, c)
		ps[i] = newDouble(t, sessions[i], "lost", n)
	}
	entered, eerrs := waitAll(n, func(i int) error { return ps[i].Enter(ctxFor(t, time.Minute)) })
	returnsSoon(t, entered, eerrs, 20*time.Second, "Enter of all participants")
	leaving, lerrs := waitAll(n-1, func(i int) error { return ps[i].Leave(ctxFor(t, time.Minute)) })
	stillBlocked(t, leaving, "Leave while a participant is still in")
	h.ExpireSession(t, sessions[n-1])
	returnsSoon(t, leaving, lerrs, 3*h.TTL()+5*time.Second, "Leave after the last participant's session expired")
}
