package zkcoord

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

// A client that cannot reach any server counts its session lost once the
// negotiated timeout has passed since it last heard from one (the
// client-side deadline), not only when a server says so.
func TestServerKilledLosesSessionWithinTTL(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	s := newSession(t, c)
	g, err := mutex(t, s, "k").Lock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	srv.Process.Kill()
	waitDone(t, s.Done(), testTTL+2*time.Second, "session after the server was killed")
	took := time.Since(killed)
	t.Logf("session lost %v after the server was killed (TTL %v)", took.Round(time.Millisecond), s.TTL())
	if took > testTTL+time.Second || took < testTTL/2 {
		t.Fatalf("session lost after %v; want between TTL/2 (last ping) and TTL+1s", took)
	}
	if !errors.Is(s.Err(), coord.ErrSessionExpired) || !strings.Contains(s.Err().Error(), "no answer") {
		t.Fatalf("session Err = %v", s.Err())
	}
	waitDone(t, g.Done(), time.Second, "guard")
	if !errors.Is(g.Err(), coord.ErrLockLost) || !errors.Is(g.Err(), coord.ErrSessionExpired) {
		t.Fatalf("guard Err = %v", g.Err())
	}
}

// Partitioned from the server, a holder gives its lock up (client-side
// deadline) no later than the server expires its session and a waiter on the
// other side of the partition takes over: no overlap of believed holders.
func TestPartitionedHolderLetsGoBeforeSuccessorAcquires(t *testing.T) {
	srv := local.StartZooKeeper(t)
	proxy := local.NewProxy(t, srv.Addr)
	far := openClient(t, "zk://"+proxy.Addr())
	near := openClient(t, srv.URL)
	sFar, sNear := newSession(t, far), newSession(t, near)
	g, err := mutex(t, sFar, "p").Lock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acquired := make(chan time.Time, 1)
	go func() {
		if _, err := mutex(t, sNear, "p").Lock(ctxT(t, 20*time.Second)); err != nil {
			t.Error(err)
		}
		acquired <- time.Now()
	}()
	waitContenders(t, near, "p", 2)
	blocked := time.Now()
	proxy.Block()
	// A release that cannot reach the server fails and the lock stays held
	// (the successor must not be let in early, so the holder must not stop
	// believing it holds before its session is gone).
	if err := g.Unlock(ctxT(t, 200*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Unlock while partitioned = %v, want DeadlineExceeded", err)
	}
	if g.Err() != nil {
		t.Fatalf("guard ended by a release that never reached the server: %v", g.Err())
	}
	waitDone(t, g.Done(), testTTL+2*time.Second, "partitioned holder's guard")
	lost := time.Now()
	if !errors.Is(g.Err(), coord.ErrSessionExpired) {
		t.Fatalf("guard Err = %v", g.Err())
	}
	var got time.Time
	select {
	case got = <-acquired:
	case <-time.After(testTTL + 5*time.Second):
		t.Fatal("the waiter never acquired")
	}
	t.Logf("partitioned holder let go after %v; the server's successor acquired after %v",
		lost.Sub(blocked).Round(time.Millisecond), got.Sub(blocked).Round(time.Millisecond))
	if got.Before(lost) {
		t.Fatalf("successor acquired %v before the partitioned holder saw its loss", lost.Sub(got))
	}
	proxy.Unblock()
	if sNear.Err() != nil {
		t.Fatalf("the near session ended: %v", sNear.Err())
	}
}
