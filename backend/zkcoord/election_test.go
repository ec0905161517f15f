package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/election"
)

func elect(t testing.TB, s *coord.Session, name string) *election.Election {
	t.Helper()
	e, err := election.New(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestElectionOnServer(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)

	t.Run("FIFOHerdFreeIncreasingTerms", func(t *testing.T) {
		const n = 4
		name := "fifo"
		sessions := make([]*coord.Session, n)
		type won struct {
			i    int
			term *election.Term
		}
		wins := make(chan won, n)
		for i := range sessions {
			sessions[i] = newSession(t, c)
			e := elect(t, sessions[i], name)
			go func() {
				term, err := e.Campaign(ctxT(t, 20*time.Second), []byte(fmt.Sprint(i)))
				if err != nil {
					t.Error(err)
					return
				}
				wins <- won{i, term}
			}()
			waitCount(t, c, "election", name, i+1)
		}
		first := recv(t, wins, 5*time.Second, "first leader")
		if first.i != 0 {
			t.Fatalf("candidate %d leads, want 0", first.i)
		}
		// Each waiting candidate watches only its predecessor; the leader
		// watches its own candidacy.
		q := queueNodes(t, srv.Addr, "/coord/election/"+name, kindElect)
		want := map[string][]string{sessions[0].ID(): {q[0]}}
		for i := 1; i < n; i++ {
			want[sessions[i].ID()] = []string{q[i-1]}
		}
		waitWatches(t, srv.Addr, want)
		prev := first.term
		for i := 1; i < n; i++ {
			notYet(t, wins, 50*time.Millisecond, "a successor before the resign")
			if err := prev.Resign(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(prev.Err(), coord.ErrNotLeader) {
				t.Fatalf("resigned term Err = %v", prev.Err())
			}
			w := recv(t, wins, 5*time.Second, "successor")
			if w.i != i {
				t.Fatalf("candidate %d leads, want %d (FIFO)", w.i, i)
			}
			if w.term.Token() <= prev.Token() {
				t.Fatalf("term token %d after %d", w.term.Token(), prev.Token())
			}
			l, err := elect(t, sessions[0], name).Leader(ctxT(t, 5*time.Second))
			if err != nil || l.Token != w.term.Token() || string(l.Value) != fmt.Sprint(i) {
				t.Fatalf("Leader = %+v %v, want token %d value %d", l, err, w.term.Token(), i)
			}
			prev = w.term
		}
		if err := prev.Resign(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := prev.Resign(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrNotLeader) {
			t.Fatalf("second Resign = %v", err)
		}
		if _, err := election.LeaderOf(ctxT(t, 5*time.Second), c, name); !errors.Is(err, coord.ErrNoLeader) {
			t.Fatalf("Leader after the last resign = %v", err)
		}
		waitCount(t, c, "election", name, 0)
	})

	t.Run("LeadershipNeedsTheSessionsOwnNode", func(t *testing.T) {
		cl := c.Driver().(*client)
		sa, sb := driverSession(t, cl), driverSession(t, cl)
		dir := cl.recipePath("election", "own")
		node, token, err := sa.enqueue(ctxT(t, 5*time.Second), dir, kindElect, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		// sa's node leads; sb must not take it for its own.
		if _, err := sb.claim(ctxT(t, 5*time.Second), node, token, nil); !errors.Is(err, coord.ErrCorrupt) {
			t.Fatalf("claim of another session's node = %v, want ErrCorrupt", err)
		}
		if _, err := sa.claim(ctxT(t, 5*time.Second), node, token+1, nil); !errors.Is(err, coord.ErrCorrupt) {
			t.Fatalf("claim with another token = %v, want ErrCorrupt", err)
		}
		term, err := sa.claim(ctxT(t, 5*time.Second), node, token, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		if err := term.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ProclaimIsCompareAndSet", func(t *testing.T) {
		s := newSession(t, c)
		term, err := elect(t, s, "proclaim").Campaign(ctxT(t, 5*time.Second), []byte("v0"))
		if err != nil {
			t.Fatal(err)
		}
		q := queueNodes(t, srv.Addr, "/coord/election/proclaim", kindElect)
		raw := rawConn(t, srv.Addr)
		// Someone else writes to the candidacy: the node is still this
		// session's, so Proclaim re-reads the version and succeeds.
		if _, err := raw.Set(q[0], []byte("vandal"), -1); err != nil {
			t.Fatal(err)
		}
		if err := term.Proclaim(ctxT(t, 5*time.Second), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		if l, _ := election.LeaderOf(ctxT(t, 5*time.Second), c, "proclaim"); string(l.Value) != "v1" || string(term.Value()) != "v1" {
			t.Fatalf("leader value %q, term value %q", l.Value, term.Value())
		}
		// The candidacy is deleted: the term is lost and Proclaim refused.
		if err := raw.Delete(q[0], -1); err != nil {
			t.Fatal(err)
		}
		waitDone(t, term.Done(), 5*time.Second, "term of a deleted candidacy")
		if !errors.Is(term.Err(), coord.ErrLeadershipLost) {
			t.Fatalf("term Err = %v", term.Err())
		}
		if err := term.Proclaim(ctxT(t, 5*time.Second), []byte("v2")); !errors.Is(err, coord.ErrNotLeader) {
			t.Fatalf("Proclaim after loss = %v", err)
		}
		if s.Err() != nil {
			t.Fatalf("session ended: %v", s.Err())
		}
	})

	t.Run("ObserverEndsOnTheLatestState", func(t *testing.T) {
		name := "observe"
		var mu sync.Mutex
		var seen []driver.LeaderInfo
		last := func() (driver.LeaderInfo, int) {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				return driver.LeaderInfo{}, 0
			}
			return seen[len(seen)-1], len(seen)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.Driver().(driver.Elector).Observe(ctx, name, func(li driver.LeaderInfo) {
				mu.Lock()
				seen = append(seen, li)
				mu.Unlock()
			})
		}()
		waitFor(t, 5*time.Second, "the first delivery", func() bool { _, n := last(); return n > 0 })
		if li, _ := last(); li.Token != 0 {
			t.Fatalf("first delivery %+v, want no leader", li)
		}
		s1, s2 := newSession(t, c), newSession(t, c)
		t1, err := elect(t, s1, name).Campaign(ctxT(t, 5*time.Second), []byte("one"))
		if err != nil {
			t.Fatal(err)
		}
		won := make(chan *election.Term, 1)
		go func() {
			t2, err := elect(t, s2, name).Campaign(ctxT(t, 10*time.Second), []byte("two"))
			if err != nil {
				t.Error(err)
			}
			won <- t2
		}()
		waitCount(t, c, "election", name, 2)
		for i := range 30 { // a burst of changes: the last one must be delivered
			if err := t1.Proclaim(ctxT(t, 5*time.Second), []byte(fmt.Sprint("one-", i))); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "the last proclaimed value", func() bool {
			li, _ := last()
			return li.Token == uint64(t1.Token()) && string(li.Value) == "one-29"
		})
		_, before := last()
		if err := t1.Resign(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		t2 := recv(t, won, 5*time.Second, "second leader")
		waitFor(t, 5*time.Second, "the second leader", func() bool {
			li, _ := last()
			return li.Token == uint64(t2.Token()) && string(li.Value) == "two"
		})
		if err := t2.Resign(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "no leader", func() bool { li, _ := last(); return li.Token == 0 })
		mu.Lock()
		var prev uint64
		for i, li := range seen {
			if li.Token != 0 && li.Token < prev {
				t.Errorf("delivery %d went back to term %d after %d", i, li.Token, prev)
			}
			if li.Token != 0 {
				prev = li.Token
			}
			if i > 0 && li.Token == seen[i-1].Token && string(li.Value) == string(seen[i-1].Value) {
				t.Errorf("delivery %d repeats %+v", i, li)
			}
		}
		if n := len(seen) - before; n != 2 { // the second leader, then none
			t.Errorf("%d deliveries for a handover and a resign: %+v", n, seen[before:])
		}
		mu.Unlock()
		cancel()
		if err := recv(t, done, 5*time.Second, "Observe after cancel"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Observe = %v, want Canceled", err)
		}
	})
}

// driverSession opens a driver session of cl, closed when t ends.
func driverSession(t testing.TB, cl *client) *session {
	t.Helper()
	ds, err := cl.NewSession(ctxT(t, 5*time.Second), driver.SessionConfig{TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ds.Close(context.Background()) })
	return ds.(*session)
}

// waitFor polls cond (a test's view of state, not coord's wake-up path).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
