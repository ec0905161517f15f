package consulcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

func rwmutex(t testing.TB, s *coord.Session, name string) *lock.RWMutex {
	t.Helper()
	m, err := lock.NewRWMutex(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// acquireAsync runs acquire in the background; the guard or error arrives on
// the returned channels.
func acquireAsync(t testing.TB, d time.Duration, acquire func(ctx context.Context) (*lock.Guard, error)) (<-chan *lock.Guard, <-chan error) {
	got, errc := make(chan *lock.Guard, 1), make(chan error, 1)
	ctx := ctxFor(t, d)
	go func() {
		g, err := acquire(ctx)
		if err != nil {
			errc <- err
			return
		}
		got <- g
	}()
	return got, errc
}

func unlock(t testing.TB, g *lock.Guard) {
	t.Helper()
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
}

func notYet(t testing.TB, got <-chan *lock.Guard, what string) {
	t.Helper()
	select {
	case <-got:
		t.Fatalf("%s acquired out of turn", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// Queue W1 (holding), R1, W2, R2: R1 follows W1, W2 waits for R1, and R2
// waits for W2 although no writer holds the lock when it queues behind W2.
// Tokens exceed every excluded earlier holder's.
func testRWLockFIFO(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	m := func() *lock.RWMutex { return rwmutex(t, newSession(t, c), "fifo") }
	w1, err := m().Lock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r1c, _ := acquireAsync(t, 30*time.Second, m().RLock)
	waitRecipe(t, c, "rwlock", "fifo", 2)
	w2c, _ := acquireAsync(t, 30*time.Second, m().Lock)
	waitRecipe(t, c, "rwlock", "fifo", 3)
	r2c, _ := acquireAsync(t, 30*time.Second, m().RLock)
	waitRecipe(t, c, "rwlock", "fifo", 4)
	notYet(t, r1c, "a reader behind a holding writer")
	unlock(t, w1)
	r1 := within(t, r1c, 5*time.Second, "R1 after W1")
	notYet(t, w2c, "W2 while R1 reads")
	notYet(t, r2c, "R2 behind waiting writer W2")
	unlock(t, r1)
	w2 := within(t, w2c, 5*time.Second, "W2 after R1")
	notYet(t, r2c, "R2 while W2 writes")
	unlock(t, w2)
	r2 := within(t, r2c, 5*time.Second, "R2 after W2")
	if !(w1.Token() < r1.Token() && r1.Token() < w2.Token() && w2.Token() < r2.Token()) {
		t.Fatalf("tokens W1 %d, R1 %d, W2 %d, R2 %d; want increasing", w1.Token(), r1.Token(), w2.Token(), r2.Token())
	}
	unlock(t, r2)
	waitRecipe(t, c, "rwlock", "fifo", 0)
}

// TryRLock succeeds among readers and fails once a writer queues; TryLock
// fails while anyone holds; failed tries leave no entry.
func testRWLockTry(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	m := func() *lock.RWMutex { return rwmutex(t, newSession(t, c), "try") }
	r1, err := m().TryRLock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := m().TryRLock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("TryRLock among readers: %v", err)
	}
	if _, err := m().TryLock(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock while read-locked: %v, want ErrLocked", err)
	}
	wc, _ := acquireAsync(t, 30*time.Second, m().Lock)
	waitRecipe(t, c, "rwlock", "try", 3)
	if _, err := m().TryRLock(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryRLock with a writer queued: %v, want ErrLocked", err)
	}
	if n := recipeContenders(t, c, "rwlock", "try"); n != 3 {
		t.Fatalf("%d entries after failed tries, want 3", n)
	}
	unlock(t, r1)
	unlock(t, r2)
	unlock(t, within(t, wc, 5*time.Second, "writer after the readers"))
	waitRecipe(t, c, "rwlock", "try", 0)
}

// A waiting writer watches only its immediate predecessor: readers ahead of
// that one leaving do not wake it.
func testRWLockWriterHerdFree(t *testing.T, a *local.Consul, _ *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	r1, err := rwmutex(t, newSession(t, c), "wh").RLock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rwmutex(t, newSession(t, c), "wh").RLock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wc, ct := counted(t, a, ns)
	got, _ := acquireAsync(t, 30*time.Second, rwmutex(t, newSession(t, wc), "wh").Lock)
	waitRecipe(t, c, "rwlock", "wh", 3)
	time.Sleep(100 * time.Millisecond) // let the writer park its query
	before := ct.n.Load()
	unlock(t, r1)
	time.Sleep(300 * time.Millisecond)
	quiet(t, "a writer whose predecessor is still reading", ct, before)
	notYet(t, got, "the writer while R2 reads")
	unlock(t, r2)
	w := within(t, got, 5*time.Second, "writer after both readers left")
	if w.Token() <= r2.Token() {
		t.Fatalf("writer token %d not above reader token %d", w.Token(), r2.Token())
	}
	unlock(t, w)
}
