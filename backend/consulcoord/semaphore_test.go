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

func semaphore(t testing.TB, s *coord.Session, name string, limit int) *lock.Semaphore {
	t.Helper()
	m, err := lock.NewSemaphore(s, name, limit)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Waiters take permits in arrival order as holders release.
func testSemaphoreFIFO(t *testing.T, a *local.Consul, _ *api.Client) {
	const limit, waiters = 2, 3
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	sem := func() *lock.Semaphore { return semaphore(t, newSession(t, c), "fifo", limit) }
	var held []*lock.Guard
	for range limit {
		g, err := sem().Acquire(ctxFor(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, g)
	}
	gots := make([]<-chan *lock.Guard, waiters)
	for i := range waiters {
		gots[i], _ = acquireAsync(t, 30*time.Second, sem().Acquire)
		waitRecipe(t, c, "semaphore", "fifo", limit+i+1)
	}
	for i := range waiters {
		notYet(t, gots[i], "a waiter while all permits are taken")
		unlock(t, held[0])
		held = append(held[1:], within(t, gots[i], 5*time.Second, "waiter in arrival order"))
	}
	for _, g := range held {
		unlock(t, g)
	}
	waitRecipe(t, c, "semaphore", "fifo", 0)
}

// A release wakes the first waiter only; the waiter that then becomes first
// is woken by its predecessor's mark; the others send nothing.
func testSemaphoreHerdFree(t *testing.T, a *local.Consul, _ *api.Client) {
	const limit, waiters = 2, 4
	ns := uniqueNS(t)
	c0 := openURL(t, a.URL, coord.WithNamespace(ns))
	var held []*lock.Guard
	for range limit {
		g, err := semaphore(t, newSession(t, c0), "herd", limit).Acquire(ctxFor(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, g)
	}
	counters := make([]*countingTransport, waiters)
	gots := make([]<-chan *lock.Guard, waiters)
	for i := range waiters {
		c, ct := counted(t, a, ns)
		counters[i] = ct
		gots[i], _ = acquireAsync(t, 30*time.Second, semaphore(t, newSession(t, c), "herd", limit).Acquire)
		waitRecipe(t, c0, "semaphore", "herd", limit+i+1)
	}
	time.Sleep(100 * time.Millisecond) // let the last waiter park its query
	before := make([]int64, waiters)
	for i, ct := range counters {
		before[i] = ct.n.Load()
	}
	unlock(t, held[0])
	g1 := within(t, gots[0], 5*time.Second, "first waiter")
	time.Sleep(300 * time.Millisecond)
	if n := counters[0].n.Load() - before[0]; n > 1 {
		t.Errorf("the first waiter sent %d requests to take the permit; want 1 (mark)", n)
	}
	if n := counters[1].n.Load() - before[1]; n > 2 {
		t.Errorf("the second waiter sent %d requests on becoming first; want 2 (list, queue watch)", n)
	}
	for i := 2; i < waiters; i++ {
		quiet(t, "a later waiter", counters[i], before[i])
	}
	held = append(held[1:], g1)
	for i := 1; i < waiters; i++ {
		unlock(t, held[0])
		held = append(held[1:], within(t, gots[i], 5*time.Second, "next waiter"))
	}
	for _, g := range held {
		unlock(t, g)
	}
	waitRecipe(t, c0, "semaphore", "herd", 0)
}

// A cancelled waiter in the middle of the queue wakes its successor, which
// then follows the cancelled waiter's predecessor: the chain stays intact.
func testSemaphoreCancelledMiddle(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	sem := func() *lock.Semaphore { return semaphore(t, newSession(t, c), "mid", 1) }
	h, err := sem().Acquire(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w1c, _ := acquireAsync(t, 30*time.Second, sem().Acquire)
	waitRecipe(t, c, "semaphore", "mid", 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w2 := sem()
	w2err := make(chan error, 1)
	go func() { _, err := w2.Acquire(ctx); w2err <- err }()
	waitRecipe(t, c, "semaphore", "mid", 3)
	w3c, _ := acquireAsync(t, 30*time.Second, sem().Acquire)
	waitRecipe(t, c, "semaphore", "mid", 4)
	cancel()
	if err := within(t, w2err, 5*time.Second, "cancelled waiter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", err)
	}
	waitRecipe(t, c, "semaphore", "mid", 3)
	unlock(t, h)
	w1 := within(t, w1c, 5*time.Second, "W1")
	notYet(t, w3c, "W3 while W1 holds the only permit")
	unlock(t, w1)
	unlock(t, within(t, w3c, 5*time.Second, "W3 after W1"))
	waitRecipe(t, c, "semaphore", "mid", 0)
}
