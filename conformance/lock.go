package conformance

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/lock"
)

// LossBounder is implemented by a Harness whose backend cannot replace a dead
// holder within TTL + 1s (Consul invalidates an unrenewed session only after
// up to twice its TTL); it returns the bound the suite should check instead.
type LossBounder interface {
	LossBound() time.Duration
}

// RunLock runs the lock contract (SPEC §3) against h: mutual exclusion,
// fencing tokens, TryLock, loss on session expiry, cleanup of cancelled
// waiters, exclusion between Mutexes of one session, and succession after the
// holder process is killed.
func RunLock(t *testing.T, h Harness) {
	t.Run("MutualExclusion", func(t *testing.T) { lockMutualExclusion(t, h) })
	t.Run("TokensIncreaseAcrossHandoversAndExpiry", func(t *testing.T) { lockTokens(t, h) })
	t.Run("TryLock", func(t *testing.T) { lockTry(t, h) })
	t.Run("ExpiredHolderLosesAndWaiterProceeds", func(t *testing.T) { lockExpiredHolder(t, h) })
	t.Run("CancelledLockLeavesNoState", func(t *testing.T) { lockCancelled(t, h) })
	t.Run("SameSessionMutexesExclude", func(t *testing.T) { lockSameSession(t, h) })
	t.Run("KilledHolderIsSucceeded", func(t *testing.T) { lockKilledHolder(t, h) })
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newSession(t testing.TB, h Harness, c *coord.Client) *coord.Session {
	t.Helper()
	s, err := c.NewSession(ctxFor(t, 30*time.Second), coord.SessionTTL(h.TTL()))
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
		t.Fatalf("new mutex: %v", err)
	}
	return m
}

func contenders(t testing.TB, c *coord.Client, name string) int {
	t.Helper()
	return recipeContenders(t, c, "lock", name)
}

func recipeContenders(t testing.TB, c *coord.Client, recipe, name string) int {
	t.Helper()
	in, ok := c.Driver().(driver.Inspector)
	if !ok {
		t.Fatalf("%s driver does not implement driver.Inspector", c.Backend())
	}
	n, err := in.Contenders(ctxFor(t, 10*time.Second), recipe, name)
	if err != nil {
		t.Fatalf("contenders: %v", err)
	}
	return n
}

// waitContenders polls the backend's state (a test observation, not part of
// any algorithm) until it shows want contenders.
func waitContenders(t testing.TB, c *coord.Client, name string, want int, within time.Duration) {
	t.Helper()
	waitRecipeContenders(t, c, "lock", name, want, within)
}

func waitRecipeContenders(t testing.TB, c *coord.Client, recipe, name string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := recipeContenders(t, c, recipe, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %d contender entries on the server, want %d", recipe, name, n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lockMutualExclusion(t *testing.T, h Harness) {
	const workers, rounds = 8, 6
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var (
		inside  atomic.Int32
		mu      sync.Mutex
		tokens  []coord.Token
		wg      sync.WaitGroup
		overlap atomic.Int32
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		s := newSession(t, h, c)
		m := newMutex(t, s, "mutex")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				g, err := m.Lock(ctxFor(t, 60*time.Second))
				if err != nil {
					errs <- err
					return
				}
				if inside.Add(1) != 1 {
					overlap.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, g.Token())
				mu.Unlock()
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("worker: %v", err)
	}
	if n := overlap.Load(); n != 0 {
		t.Fatalf("mutual exclusion violated %d times among %d contenders", n, workers)
	}
	if len(tokens) != workers*rounds {
		t.Fatalf("%d acquisitions, want %d", len(tokens), workers*rounds)
	}
	checkIncreasing(t, tokens)
	waitContenders(t, c, "mutex", 0, 5*time.Second)
}

func checkIncreasing(t testing.TB, tokens []coord.Token) {
	t.Helper()
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("fencing token did not increase: holder %d got %d after %d", i, tokens[i], tokens[i-1])
		}
	}
}

func lockTokens(t *testing.T, h Harness) {
	const handovers, every = 100, 25
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	sessions := make([]*coord.Session, 4)
	for i := range sessions {
		sessions[i] = newSession(t, h, c)
	}
	var tokens []coord.Token
	expired := 0
	for i := 0; i < handovers; i++ {
		k := i % len(sessions)
		g, err := newMutex(t, sessions[k], "tokens").Lock(ctxFor(t, 60*time.Second))
		if err != nil {
			t.Fatalf("handover %d: %v", i, err)
		}
		tokens = append(tokens, g.Token())
		if i%every == every-1 {
			h.ExpireSession(t, sessions[k])
			select {
			case <-g.Done():
			case <-time.After(3*h.TTL() + 5*time.Second):
				t.Fatalf("handover %d: guard not done after its session expired", i)
			}
			if !errors.Is(g.Err(), lock.ErrLockLost) || !errors.Is(g.Err(), coord.ErrSessionExpired) {
				t.Fatalf("handover %d: Err() = %v after expiry, want ErrLockLost and ErrSessionExpired", i, g.Err())
			}
			expired++
			sessions[k] = newSession(t, h, c)
			continue
		}
		if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatalf("handover %d: unlock: %v", i, err)
		}
	}
	checkIncreasing(t, tokens)
	if expired == 0 {
		t.Fatal("no handover was caused by session expiry")
	}
}

func lockTry(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	m1 := newMutex(t, newSession(t, h, c), "try")
	m2 := newMutex(t, newSession(t, h, c), "try")
	g1, err := m1.TryLock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	if _, err := m2.TryLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryLock of a held lock: err = %v, want ErrLocked", err)
	}
	if n := contenders(t, c, "try"); n != 1 {
		t.Fatalf("after a failed TryLock: %d contender entries, want 1 (the holder)", n)
	}
	if err := g1.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := g1.Unlock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("second Unlock: err = %v, want ErrNotHeld", err)
	}
	if !errors.Is(g1.Err(), lock.ErrNotHeld) {
		t.Fatalf("Err() after Unlock = %v, want ErrNotHeld", g1.Err())
	}
	g2, err := m2.TryLock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	if g2.Token() <= g1.Token() {
		t.Fatalf("token %d after %d", g2.Token(), g1.Token())
	}
	if err := g2.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func lockExpiredHolder(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	s1 := newSession(t, h, c)
	g1, err := newMutex(t, s1, "expiry").Lock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2 := newMutex(t, newSession(t, h, c), "expiry")
	got := make(chan *lock.Guard, 1)
	werr := make(chan error, 1)
	go func() {
		g, err := m2.Lock(ctxFor(t, 60*time.Second))
		if err != nil {
			werr <- err
			return
		}
		got <- g
	}()
	waitContenders(t, c, "expiry", 2, 10*time.Second)
	select {
	case <-got:
		t.Fatal("waiter acquired a held lock")
	default:
	}
	h.ExpireSession(t, s1)
	select {
	case <-g1.Done():
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("holder's Done() did not close after its session expired")
	}
	if !errors.Is(g1.Err(), lock.ErrLockLost) || !errors.Is(g1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("holder Err() = %v, want ErrLockLost wrapping ErrSessionExpired", g1.Err())
	}
	if err := g1.Unlock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("Unlock after loss: err = %v, want ErrNotHeld", err)
	}
	select {
	case <-s1.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session Done() not closed after expiry")
	}
	if !errors.Is(s1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s1.Err())
	}
	select {
	case g2 := <-got:
		if g2.Token() <= g1.Token() {
			t.Fatalf("successor token %d not greater than %d", g2.Token(), g1.Token())
		}
		if err := g2.Unlock(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	case err := <-werr:
		t.Fatalf("waiter: %v", err)
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("waiter did not acquire the lock after the holder's session expired")
	}
	if _, err := newMutex(t, s1, "other").Lock(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("Lock on an expired session: err = %v, want ErrSessionExpired", err)
	}
}

func lockCancelled(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	g1, err := newMutex(t, newSession(t, h, c), "cancel").Lock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2 := newMutex(t, newSession(t, h, c), "cancel")
	checkCancelledWait(t, c, "lock", "cancel", 1, func(ctx context.Context) error { _, err := m2.Lock(ctx); return err })
	if err := g1.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitContenders(t, c, "cancel", 0, 5*time.Second)
}

// checkCancelledWait proves that a wait abandoned by its deadline, and one
// abandoned by a cancel, return the context's error and leave only the held
// entries of recipe name on the server.
func checkCancelledWait(t *testing.T, c *coord.Client, recipe, name string, held int, wait func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s wait with an expiring deadline: err = %v, want context.DeadlineExceeded", recipe, err)
	}
	waitRecipeContenders(t, c, recipe, name, held, 5*time.Second)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wait(ctx) }()
	waitRecipeContenders(t, c, recipe, name, held+1, 10*time.Second)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled %s wait: err = %v, want context.Canceled", recipe, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("cancelled %s wait did not return", recipe)
	}
	waitRecipeContenders(t, c, recipe, name, held, 5*time.Second)
}

func lockSameSession(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	s := newSession(t, h, c)
	m1, m2 := newMutex(t, s, "same"), newMutex(t, s, "same")
	g1, err := m1.Lock(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.TryLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("second Mutex of the same session: TryLock err = %v, want ErrLocked", err)
	}
	got := make(chan *lock.Guard, 1)
	go func() {
		g, err := m2.Lock(ctxFor(t, 60*time.Second))
		if err != nil {
			t.Errorf("m2.Lock: %v", err)
			close(got)
			return
		}
		got <- g
	}()
	waitContenders(t, c, "same", 2, 10*time.Second)
	select {
	case <-got:
		t.Fatal("second Mutex of the same session acquired a held lock")
	case <-time.After(200 * time.Millisecond):
	}
	if err := g1.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case g2, ok := <-got:
		if !ok {
			return
		}
		if g2.Token() <= g1.Token() {
			t.Fatalf("token %d after %d", g2.Token(), g1.Token())
		}
		if err := g2.Unlock(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Mutex did not acquire after the first released")
	}
}

func lockKilledHolder(t *testing.T, h Harness) {
	ns := uniqueNamespace(t)
	marker := filepath.Join(t.TempDir(), "token")
	holderToken, kill := startHolder(t, h, ns, marker, "lock", "killed")
	c := h.NewClient(t, coord.WithNamespace(ns))
	m := newMutex(t, newSession(t, h, c), "killed")
	if _, err := m.TryLock(ctxFor(t, 10*time.Second)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryLock while coordctl holds: err = %v, want ErrLocked", err)
	}
	bound := lossBound(h)
	killed := time.Now()
	kill()
	g, err := m.Lock(ctxFor(t, bound+30*time.Second))
	took := time.Since(killed)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	t.Logf("%s: holder killed with SIGKILL, successor acquired after %v (TTL %v, bound %v)", h.Backend(), took.Round(time.Millisecond), h.TTL(), bound)
	if took > bound {
		t.Errorf("successor acquired after %v, want within %v", took, bound)
	}
	if uint64(g.Token()) <= holderToken {
		t.Errorf("successor token %d not greater than the killed holder's %d", g.Token(), holderToken)
	}
	if err := g.Unlock(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}
