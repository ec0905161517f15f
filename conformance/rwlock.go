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

// RunRWMutex runs the read-write lock contract (SPEC §3) against h.
func RunRWMutex(t *testing.T, h Harness) {
	t.Run("ReadersShareWriterExcludes", func(t *testing.T) { rwShare(t, h) })
	t.Run("WaitingWriterNotStarvedByLaterReaders", func(t *testing.T) { rwNoStarvation(t, h) })
	t.Run("ExclusionUnderLoad", func(t *testing.T) { rwLoad(t, h) })
	t.Run("CancelledWaitLeavesNoState", func(t *testing.T) { rwCancelled(t, h) })
}

func newRW(t testing.TB, s *coord.Session, name string) *lock.RWMutex {
	t.Helper()
	m, err := lock.NewRWMutex(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rwShare(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var readers []*lock.Guard
	for i := 0; i < 3; i++ {
		g, err := newRW(t, newSession(t, h, c), "share").TryRLock(ctxFor(t, 10*time.Second))
		if err != nil {
			t.Fatalf("reader %d: %v (readers must share)", i, err)
		}
		readers = append(readers, g)
	}
	w := newRW(t, newSession(t, h, c), "share")
	if _, err := w.TryLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("writer TryLock while readers hold: %v, want ErrLocked", err)
	}
	for _, g := range readers {
		if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := w.TryLock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("writer TryLock once readers left: %v", err)
	}
	for _, g := range readers {
		if gw.Token() <= g.Token() {
			t.Fatalf("writer token %d not greater than an earlier reader's %d", gw.Token(), g.Token())
		}
	}
	r := newRW(t, newSession(t, h, c), "share")
	if _, err := r.TryRLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("reader TryRLock while a writer holds: %v, want ErrLocked", err)
	}
	if _, err := w.TryLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("second writer TryLock while a writer holds: %v, want ErrLocked", err)
	}
	if err := gw.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitRecipeContenders(t, c, "rwlock", "share", 0, 5*time.Second)
}

func rwNoStarvation(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	r1, err := newRW(t, newSession(t, h, c), "fair").RLock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	wg := sync.WaitGroup{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g, err := newRW(t, newSession(t, h, c), "fair").Lock(ctxFor(t, time.Minute))
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		order <- "writer"
		time.Sleep(50 * time.Millisecond)
		_ = g.Unlock(ctxFor(t, 10*time.Second))
	}()
	waitRecipeContenders(t, c, "rwlock", "fair", 2, 10*time.Second)
	late := newRW(t, newSession(t, h, c), "fair")
	if _, err := late.TryRLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("a reader arriving after a waiting writer got in (TryRLock: %v): writers can starve", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g, err := late.RLock(ctxFor(t, time.Minute))
		if err != nil {
			t.Errorf("late reader: %v", err)
			return
		}
		order <- "reader"
		_ = g.Unlock(ctxFor(t, 10*time.Second))
	}()
	waitRecipeContenders(t, c, "rwlock", "fair", 3, 10*time.Second)
	if err := r1.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	var got []string
	for s := range order {
		got = append(got, s)
	}
	if len(got) != 2 || got[0] != "writer" {
		t.Fatalf("acquisition order %v, want the waiting writer before the later reader", got)
	}
}

func rwLoad(t *testing.T, h Harness) {
	const writers, readers, rounds = 2, 4, 5
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var (
		rIn, wIn   atomic.Int32
		violations atomic.Int32
		maxReaders atomic.Int32
		mu         sync.Mutex
		wTokens    []coord.Token
		wg         sync.WaitGroup
	)
	worker := func(write bool) {
		defer wg.Done()
		m := newRW(t, newSession(t, h, c), "load")
		for r := 0; r < rounds; r++ {
			var g *lock.Guard
			var err error
			if write {
				g, err = m.Lock(ctxFor(t, time.Minute))
			} else {
				g, err = m.RLock(ctxFor(t, time.Minute))
			}
			if err != nil {
				t.Errorf("acquire: %v", err)
				return
			}
			if write {
				if wIn.Add(1) != 1 || rIn.Load() != 0 {
					violations.Add(1)
				}
				mu.Lock()
				wTokens = append(wTokens, g.Token())
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				wIn.Add(-1)
			} else {
				n := rIn.Add(1)
				if wIn.Load() != 0 {
					violations.Add(1)
				}
				for {
					m := maxReaders.Load()
					if n <= m || maxReaders.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				rIn.Add(-1)
			}
			if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
				t.Errorf("unlock: %v", err)
				return
			}
		}
	}
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go worker(true)
	}
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go worker(false)
	}
	wg.Wait()
	if n := violations.Load(); n != 0 {
		t.Fatalf("a writer shared the lock %d times", n)
	}
	checkIncreasing(t, wTokens)
	t.Logf("%s: up to %d readers held the lock together", h.Backend(), maxReaders.Load())
}

func rwCancelled(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	gw, err := newRW(t, newSession(t, h, c), "cancel").Lock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r := newRW(t, newSession(t, h, c), "cancel")
	checkCancelledWait(t, c, "rwlock", "cancel", 1, func(ctx context.Context) error { _, err := r.RLock(ctx); return err })
	if err := gw.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitRecipeContenders(t, c, "rwlock", "cancel", 0, 5*time.Second)
}
