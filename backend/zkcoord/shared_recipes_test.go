package zkcoord

import (
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/barrier"
	"github.com/coordkit/coord/recipes/election"
	"github.com/coordkit/coord/recipes/lock"
)

// On a user's connection (New) all coord sessions share one ZooKeeper
// session: the own-node check must still pass for each, and closing a coord
// session must delete its candidacies, permits and barrier nodes at once.
func TestRecipesOnUserConnection(t *testing.T) {
	srv := local.StartZooKeeper(t)
	conn, events, _ := userConn(t, srv.Addr)
	c, err := New(conn, events, coord.WithTTL(testTTL), coord.WithNamespace("sharedrecipes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sa, sb := newSession(t, c), newSession(t, c)

	ta, err := elect(t, sa, "e").Campaign(ctxT(t, 5*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan *election.Term, 1)
	go func() {
		tb, err := elect(t, sb, "e").Campaign(ctxT(t, 10*time.Second), []byte("b"))
		if err != nil {
			t.Error(err)
		}
		won <- tb
	}()
	waitCount(t, c, "election", "e", 2)
	semA, _ := lock.NewSemaphore(sa, "s", 1)
	if _, err := semA.Acquire(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	bA, _ := barrier.New(sa, "b")
	if err := bA.Hold(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	if err := sa.Close(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ta.Done(), time.Second, "term of the closed session")
	if !errors.Is(ta.Err(), coord.ErrLeadershipLost) || !errors.Is(ta.Err(), coord.ErrSessionClosed) {
		t.Fatalf("term Err = %v", ta.Err())
	}
	tb := recv(t, won, 5*time.Second, "successor on the same connection")
	if tb.Token() <= ta.Token() {
		t.Fatalf("token %d after %d", tb.Token(), ta.Token())
	}
	semB, _ := lock.NewSemaphore(sb, "s", 1)
	if _, err := semB.TryAcquire(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("permit after the holder's session closed: %v", err)
	}
	bB, _ := barrier.New(sb, "b")
	if err := bB.Wait(ctxT(t, time.Second)); err != nil {
		t.Fatalf("barrier after its holder's session closed: %v", err)
	}
}
