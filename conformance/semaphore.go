package conformance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

// RunSemaphore runs the semaphore contract (SPEC §3) against h.
func RunSemaphore(t *testing.T, h Harness) {
	t.Run("NeverMoreThanLimit", func(t *testing.T) { semLimit(t, h) })
	t.Run("TryAcquireWhenFull", func(t *testing.T) { semTry(t, h) })
	t.Run("PermitFreedOnSessionLoss", func(t *testing.T) { semLoss(t, h) })
	t.Run("CancelledWaitLeavesNoState", func(t *testing.T) { semCancelled(t, h) })
}

func newSem(t testing.TB, s *coord.Session, name string, n int) *lock.Semaphore {
	t.Helper()
	m, err := lock.NewSemaphore(s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func semLimit(t *testing.T, h Harness) {
	const limit, workers, rounds = 3, 8, 4
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var (
		inside, peak, over atomic.Int32
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		tokens             []coord.Token
	)
	for i := 0; i < workers; i++ {
		m := newSem(t, newSession(t, h, c), "limit", limit)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				g, err := m.Acquire(ctxFor(t, time.Minute))
				if err != nil {
					t.Errorf("acquire: %v", err)
					return
				}
				n := inside.Add(1)
				if n > limit {
					over.Add(1)
				}
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				mu.Lock()
				tokens = append(tokens, g.Token())
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				inside.Add(-1)
				if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
					t.Errorf("release: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := over.Load(); n != 0 {
		t.Fatalf("more than %d holders at once, %d times", limit, n)
	}
	seen := map[coord.Token]bool{}
	for _, tok := range tokens {
		if seen[tok] {
			t.Fatalf("token %d given to two acquisitions", tok)
		}
		seen[tok] = true
	}
	t.Logf("%s: peak %d holders of %d permits", h.Backend(), peak.Load(), limit)
	waitRecipeContenders(t, c, "semaphore", "limit", 0, 5*time.Second)
}

func semTry(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var held []*lock.Guard
	for i := 0; i < 2; i++ {
		g, err := newSem(t, newSession(t, h, c), "try", 2).TryAcquire(ctxFor(t, 10*time.Second))
		if err != nil {
			t.Fatalf("TryAcquire %d of 2: %v", i+1, err)
		}
		held = append(held, g)
	}
	third := newSem(t, newSession(t, h, c), "try", 2)
	if _, err := third.TryAcquire(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryAcquire of a full semaphore: %v, want ErrLocked", err)
	}
	waitRecipeContenders(t, c, "semaphore", "try", 2, 5*time.Second)
	if err := held[0].Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	g, err := third.TryAcquire(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("TryAcquire after a release: %v", err)
	}
	for _, g := range []*lock.Guard{held[1], g} {
		if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func semLoss(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	s1 := newSession(t, h, c)
	g1, err := newSem(t, s1, "loss", 2).Acquire(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	g2, err := newSem(t, newSession(t, h, c), "loss", 2).Acquire(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *lock.Guard, 1)
	go func() {
		g, err := newSem(t, newSession(t, h, c), "loss", 2).Acquire(ctxFor(t, time.Minute))
		if err != nil {
			t.Errorf("waiter: %v", err)
			close(got)
			return
		}
		got <- g
	}()
	waitRecipeContenders(t, c, "semaphore", "loss", 3, 10*time.Second)
	h.ExpireSession(t, s1)
	select {
	case <-g1.Done():
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("holder's guard not done after its session expired")
	}
	if !errors.Is(g1.Err(), lock.ErrLockLost) {
		t.Fatalf("Err() = %v, want ErrLockLost", g1.Err())
	}
	select {
	case g3, ok := <-got:
		if !ok {
			return
		}
		for _, g := range []*lock.Guard{g2, g3} {
			if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("the lost holder's permit was not freed for the waiter")
	}
}

func semCancelled(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	g, err := newSem(t, newSession(t, h, c), "cancel", 1).Acquire(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w := newSem(t, newSession(t, h, c), "cancel", 1)
	checkCancelledWait(t, c, "semaphore", "cancel", 1, func(ctx context.Context) error { _, err := w.Acquire(ctx); return err })
	if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitRecipeContenders(t, c, "semaphore", "cancel", 0, 5*time.Second)
}
