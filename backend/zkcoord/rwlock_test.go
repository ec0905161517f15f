package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

// Queue W0 R1 R2 W3 R4: readers wait for the nearest writer ahead, a writer
// for its predecessor; R4 does not overtake W3; tokens exceed those of the
// holders excluded.
func TestRWLockQueue(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	name := "rw"
	writer := []bool{true, false, false, true, false}
	n := len(writer)
	sessions := make([]*coord.Session, n)
	got := make(chan acquired, n)
	for i := range sessions {
		sessions[i] = newSession(t, c)
		m, err := lock.NewRWMutex(sessions[i], name)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var g *lock.Guard
			var err error
			if writer[i] {
				g, err = m.Lock(ctxT(t, 20*time.Second))
			} else {
				g, err = m.RLock(ctxT(t, 20*time.Second))
			}
			if err != nil {
				t.Error(err)
				return
			}
			got <- acquired{i, g}
		}()
		waitCount(t, c, "rwlock", name, i+1)
	}
	w0 := recv(t, got, 5*time.Second, "first writer")
	if w0.i != 0 {
		t.Fatalf("%d holds first", w0.i)
	}
	q := queueNodes(t, srv.Addr, "/coord/rwlock/"+name, kindRead, kindWrite)
	id := func(i int) string { return sessions[i].ID() }
	waitWatches(t, srv.Addr, map[string][]string{
		id(0): nil,                   // the holding writer sets no watch
		id(1): {q[0]}, id(2): {q[0]}, // readers: the nearest writer ahead
		id(3): {q[2]}, // writer: its predecessor
		id(4): {q[3]}, // reader behind a waiting writer
	})
	notYet(t, got, 50*time.Millisecond, "a holder beside the writer")
	if err := w0.g.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := map[int]*lock.Guard{}
	for range 2 {
		a := recv(t, got, 5*time.Second, "readers")
		if a.i != 1 && a.i != 2 {
			t.Fatalf("%d holds after the writer, want readers 1 and 2", a.i)
		}
		if a.g.Token() <= w0.g.Token() {
			t.Fatalf("reader token %d after writer token %d", a.g.Token(), w0.g.Token())
		}
		r[a.i] = a.g
	}
	notYet(t, got, 50*time.Millisecond, "writer 3 or reader 4 beside readers")
	if err := r[1].Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	notYet(t, got, 50*time.Millisecond, "writer 3 while reader 2 holds")
	if err := r[2].Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	w3 := recv(t, got, 5*time.Second, "writer 3")
	if w3.i != 3 || w3.g.Token() <= r[1].Token() || w3.g.Token() <= r[2].Token() {
		t.Fatalf("holder %d token %d after readers %d %d", w3.i, w3.g.Token(), r[1].Token(), r[2].Token())
	}
	notYet(t, got, 50*time.Millisecond, "reader 4 beside writer 3")
	if err := w3.g.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r4 := recv(t, got, 5*time.Second, "reader 4")
	if r4.i != 4 || r4.g.Token() <= w3.g.Token() {
		t.Fatalf("holder %d token %d after writer token %d", r4.i, r4.g.Token(), w3.g.Token())
	}

	// While reader 4 holds: another reader shares at once, a writer's
	// TryLock is refused, and a cancelled writer leaves nothing.
	s := newSession(t, c)
	m, _ := lock.NewRWMutex(s, name)
	g, err := m.TryRLock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("TryRLock beside a reader = %v", err)
	}
	if _, err := m.TryLock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock beside readers = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want DeadlineExceeded", err)
	}
	if n := count(t, c, "rwlock", name); n != 2 {
		t.Fatalf("%d entries, want the 2 readers", n)
	}
	_ = g.Unlock(ctxT(t, 5*time.Second))
	_ = r4.g.Unlock(ctxT(t, 5*time.Second))
	waitCount(t, c, "rwlock", name, 0)
}
