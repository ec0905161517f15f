package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// TestSemaphoreWakeups checks, with limit 2, the cases where a waiter must
// move up although the key it is "limit places behind" stays: holders A and
// B, waiters C, D, E queued in that order. B releasing admits C only; D
// cancelling admits nobody and leaves no key; A's session ending admits E
// at once (its permit goes with the lease).
func TestSemaphoreWakeups(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	const limit = 2
	sa := newSession(t, c, 10*time.Second)
	a, err := d.Acquire(testCtx(t, 5*time.Second), sa.Driver(), "sem", limit, lockOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Acquire(testCtx(t, 5*time.Second), newSession(t, c, 10*time.Second).Driver(), "sem", limit, lockOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	if b.Token() <= a.Token() {
		t.Fatalf("token %d after %d", b.Token(), a.Token())
	}
	if _, err := d.Acquire(testCtx(t, 5*time.Second), sa.Driver(), "sem", limit, lockOpts(true)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("try when full: %v, want ErrLocked", err)
	}
	got := make(chan acquired, 3)
	dctx, cancelD := context.WithCancel(context.Background())
	defer cancelD()
	dErr := make(chan error, 1)
	for i, who := range []string{"C", "D", "E"} {
		ci := openClient(t, e.URL)
		s := newSession(t, ci, 10*time.Second)
		go func() {
			ctx := testCtx(t, 30*time.Second)
			if who == "D" {
				ctx = dctx
			}
			h, err := driverOf(t, ci).Acquire(ctx, s.Driver(), "sem", limit, lockOpts(false))
			if who == "D" {
				dErr <- err
				return
			}
			if err != nil {
				t.Errorf("%s: %v", who, err)
			}
			got <- acquired{who, h}
		}()
		waitRecipe(t, c, "semaphore", "sem", i+3)
	}
	expectNone(t, got, 100*time.Millisecond, "acquired while full")
	if err := b.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g.who != "C" {
			t.Fatalf("%s acquired after B released, want C", g.who)
		}
		defer g.h.Release(testCtx(t, 5*time.Second))
	case <-time.After(5 * time.Second):
		t.Fatal("C did not acquire after B released")
	}
	expectNone(t, got, 200*time.Millisecond, "acquired beside A and C")
	cancelD()
	if err := <-dErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled D: %v, want context.Canceled", err)
	}
	waitRecipe(t, c, "semaphore", "sem", 3)
	expectNone(t, got, 200*time.Millisecond, "acquired after D cancelled")
	start := time.Now()
	if err := d.ExpireSession(testCtx(t, 5*time.Second), sa.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g.who != "E" {
			t.Fatalf("%s acquired, want E", g.who)
		}
		t.Logf("E acquired %v after A's lease was revoked", time.Since(start).Round(time.Millisecond))
		defer g.h.Release(testCtx(t, 5*time.Second))
	case <-time.After(2 * time.Second):
		t.Fatal("E did not acquire at once after A's session ended")
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("A's permit not reported lost")
	}
}

// TestSemaphoreLimitUnderLoad runs more workers than permits and checks the
// limit is never exceeded and every permit is eventually granted.
func TestSemaphoreLimitUnderLoad(t *testing.T) {
	e := startEtcd(t)
	const limit, workers, rounds = 3, 7, 6
	inside := make(chan struct{}, workers)
	var maxSeen int
	errc := make(chan error, workers)
	count := make(chan int, workers*rounds)
	for w := 0; w < workers; w++ {
		c := openClient(t, e.URL)
		d := driverOf(t, c)
		s := newSession(t, c, 10*time.Second)
		go func() {
			for r := 0; r < rounds; r++ {
				h, err := d.Acquire(testCtx(t, 60*time.Second), s.Driver(), "load", limit, driver.LockOptions{})
				if err != nil {
					errc <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				inside <- struct{}{}
				count <- len(inside)
				time.Sleep(2 * time.Millisecond)
				<-inside
				if err := h.Release(testCtx(t, 5*time.Second)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	close(count)
	n := 0
	for k := range count {
		n++
		maxSeen = max(maxSeen, k)
	}
	if maxSeen > limit {
		t.Fatalf("%d holders at once, limit %d", maxSeen, limit)
	}
	if n != workers*rounds {
		t.Fatalf("%d acquisitions, want %d", n, workers*rounds)
	}
}

// TestSemaphoreLargeLimit covers the prefix-watch path (limit above
// maxKeyWatches): a release in the middle of the holders admits the first
// waiter only, the next release the second.
func TestSemaphoreLargeLimit(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second)
	const limit = maxKeyWatches + 2
	holders := make([]driver.Held, limit)
	for i := range holders {
		h, err := d.Acquire(testCtx(t, 5*time.Second), s.Driver(), "large", limit, lockOpts(true))
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
		holders[i] = h
	}
	got := make(chan acquired, 2)
	for i, who := range []string{"W1", "W2"} {
		go func() {
			h, err := d.Acquire(testCtx(t, 30*time.Second), s.Driver(), "large", limit, lockOpts(false))
			if err != nil {
				t.Errorf("%s: %v", who, err)
			}
			got <- acquired{who, h}
		}()
		waitRecipe(t, c, "semaphore", "large", limit+i+1)
	}
	expectNone(t, got, 100*time.Millisecond, "acquired while full")
	for i, want := range []string{"W1", "W2"} {
		if err := holders[limit/2+i].Release(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g.who != want {
				t.Fatalf("%s acquired, want %s", g.who, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not acquire", want)
		}
		expectNone(t, got, 150*time.Millisecond, "a second waiter acquired")
	}
}
