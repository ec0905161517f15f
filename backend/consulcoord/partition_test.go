package consulcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

// TestPartition cuts one client off the agent with a black-hole proxy.
func TestPartition(t *testing.T) {
	a := local.StartConsul(t)
	t.Run("HolderGivesUpBeforeSuccessorGetsIn", func(t *testing.T) {
		t.Parallel()
		testPartitionedHolder(t, a)
	})
	t.Run("FailedCleanupIsRetried", func(t *testing.T) {
		t.Parallel()
		testCleanupRetried(t, a)
	})
}

// A partitioned holder sees its session lost after one TTL without renewal;
// Consul hands the lock on only after it invalidates the session (up to 2×TTL).
func testPartitionedHolder(t *testing.T, a *local.Consul) {
	p := local.NewProxy(t, a.Addr)
	ns := uniqueNS(t)
	cut := openURL(t, "consul://"+p.Addr(), coord.WithNamespace(ns))
	direct := openURL(t, a.URL, coord.WithNamespace(ns))
	s1 := newSession(t, cut)
	g1 := mustLock(t, mutex(t, s1, "part"))
	got, errc := lockAsync(t, mutex(t, newSession(t, direct), "part"), time.Minute)
	waitContenders(t, direct, "part", 2)
	blocked := time.Now()
	p.Block()
	t.Cleanup(p.Unblock)
	closedWithin(t, g1.Done(), s1.TTL()+2*time.Second, "partitioned holder's Done")
	lostAfter := time.Since(blocked)
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(s1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("holder Err() = %v, session Err() = %v", g1.Err(), s1.Err())
	}
	select {
	case g2 := <-got:
		grantedAfter := time.Since(blocked)
		t.Logf("partitioned holder gave up after %s; successor granted after %s (TTL %s)",
			lostAfter.Round(time.Millisecond), grantedAfter.Round(time.Millisecond), s1.TTL())
		if grantedAfter < lostAfter {
			t.Fatalf("successor granted (%s) before the partitioned holder gave up (%s)", grantedAfter, lostAfter)
		}
		if g2.Token() <= g1.Token() {
			t.Fatalf("token %d after %d", g2.Token(), g1.Token())
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(2*s1.TTL() + 5*time.Second):
		t.Fatal("successor not granted within 2×TTL")
	}
}

// A cancelled Lock whose cleanup delete cannot reach the agent leaves the
// delete to its session, which completes it once the agent is reachable
// again, so no phantom contender blocks the queue.
func testCleanupRetried(t *testing.T, a *local.Consul) {
	p := local.NewProxy(t, a.Addr)
	ns := uniqueNS(t)
	cut := openURL(t, "consul://"+p.Addr(), coord.WithNamespace(ns))
	direct := openURL(t, a.URL, coord.WithNamespace(ns))
	g1 := mustLock(t, mutex(t, newSession(t, direct), "phantom"))
	s2 := newSession(t, cut, coord.SessionTTL(30*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := mutex(t, s2, "phantom").Lock(ctx); errc <- err }()
	waitContenders(t, direct, "phantom", 2)
	p.Block()
	cancel()
	err := within(t, errc, 10*time.Second, "cancelled Lock")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock: %v, want context.Canceled", err)
	}
	if n := contenders(t, direct, "phantom"); n != 2 {
		t.Fatalf("%d contenders while partitioned; the test needs the cleanup to have failed", n)
	}
	p.Unblock()
	waitContenders(t, direct, "phantom", 1)
	if err := s2.Err(); err != nil {
		t.Fatalf("session lost: %v", err)
	}
	if err := g1.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestAgentKilled: when the agent dies, a session is lost within its TTL
// (client-side deadline), its lock reports loss, and a waiting Lock returns.
func TestAgentKilled(t *testing.T) {
	a := local.StartConsul(t)
	c := openURL(t, a.URL)
	s1 := newSession(t, c)
	g1 := mustLock(t, mutex(t, s1, "k"))
	s2 := newSession(t, c)
	_, errc := lockAsync(t, mutex(t, s2, "k"), time.Minute)
	waitContenders(t, c, "k", 2)
	killed := time.Now()
	a.Process.Kill()
	bound := s1.TTL() + 2*time.Second
	closedWithin(t, s1.Done(), bound, "session Done after the agent was killed")
	t.Logf("session lost %s after the agent was killed (TTL %s)", time.Since(killed).Round(time.Millisecond), s1.TTL())
	if !errors.Is(s1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s1.Err())
	}
	closedWithin(t, g1.Done(), time.Second, "holder Done")
	if !errors.Is(g1.Err(), coord.ErrLockLost) {
		t.Fatalf("holder Err() = %v", g1.Err())
	}
	err := within(t, errc, bound-time.Since(killed)+time.Second, "blocked Lock after the agent was killed")
	if !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("blocked Lock err = %v, want ErrSessionExpired", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := s1.Close(ctx); err != nil {
		t.Fatalf("Close of a lost session: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close of a lost session took %s", took)
	}
}
