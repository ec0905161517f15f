package etcdcoord

import (
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// acquired is the outcome of a background acquisition.
type acquired struct {
	who string
	h   driver.Held
}

// TestRWLockQueueOrder queues, behind a writer: reader r1, writer w2, reader
// r3. Releasing the writer admits r1 only (r3 stays behind w2, so the
// waiting writer is not starved); releasing r1 admits w2; releasing w2
// admits r3. Tokens grow with each excluding holder.
func TestRWLockQueueOrder(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	w1, err := d.RWLock(testCtx(t, 5*time.Second), newSession(t, c, 10*time.Second).Driver(), "rw", true, lockOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan acquired, 3)
	for i, who := range []string{"r1", "w2", "r3"} {
		ci := openClient(t, e.URL)
		s := newSession(t, ci, 10*time.Second)
		go func() {
			h, err := driverOf(t, ci).RWLock(testCtx(t, 30*time.Second), s.Driver(), "rw", who[0] == 'w', lockOpts(false))
			if err != nil {
				t.Errorf("%s: %v", who, err)
			}
			got <- acquired{who, h}
		}()
		waitRecipe(t, c, "rwlock", "rw", i+2)
	}
	next := func(want string) driver.Held {
		t.Helper()
		select {
		case a := <-got:
			if a.who != want {
				t.Fatalf("%s acquired, want %s", a.who, want)
			}
			return a.h
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not acquire", want)
		}
		return nil
	}
	expectNone(t, got, 100*time.Millisecond, "acquired while the writer holds")
	if err := w1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r1 := next("r1")
	expectNone(t, got, 200*time.Millisecond, "acquired beside reader r1 with writer w2 waiting")
	if r1.Token() <= w1.Token() {
		t.Fatalf("reader token %d after writer %d", r1.Token(), w1.Token())
	}
	if err := r1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	w2 := next("w2")
	expectNone(t, got, 100*time.Millisecond, "reader r3 acquired beside writer w2")
	if w2.Token() <= r1.Token() {
		t.Fatalf("writer token %d after reader %d", w2.Token(), r1.Token())
	}
	if err := w2.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r3 := next("r3")
	if err := r3.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := recipeCount(t, c, "rwlock", "rw"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}

// TestRWLockTryAndReadersShare checks that readers share at once, that a
// Try writer fails with ErrLocked while readers hold and leaves no key, and
// that a Try reader fails while a writer holds.
func TestRWLockTryAndReadersShare(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second)
	r1, err := d.RWLock(testCtx(t, 5*time.Second), s.Driver(), "try", false, lockOpts(true))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := d.RWLock(testCtx(t, 5*time.Second), s.Driver(), "try", false, lockOpts(true))
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if _, err := d.RWLock(testCtx(t, 5*time.Second), s.Driver(), "try", true, lockOpts(true)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("try writer beside readers: %v, want ErrLocked", err)
	}
	if n := recipeCount(t, c, "rwlock", "try"); n != 2 {
		t.Fatalf("%d keys after a failed try, want 2", n)
	}
	for _, h := range []driver.Held{r1, r2} {
		if err := h.Release(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := d.RWLock(testCtx(t, 5*time.Second), s.Driver(), "try", true, lockOpts(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.RWLock(testCtx(t, 5*time.Second), s.Driver(), "try", false, lockOpts(true)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("try reader beside a writer: %v, want ErrLocked", err)
	}
	if err := w.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := recipeCount(t, c, "rwlock", "try"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}
