package rediscoord_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/lock"
)

func TestHeartbeatKeepsLockPastSeveralTTLs(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("hb"))
	raw := rawClient(t, srv.Addr)
	const ttl = 300 * time.Millisecond
	s1 := newSession(t, c, ttl)
	g := mustLock(t, newMutex(t, s1, "long"))
	m2 := newMutex(t, newSession(t, c, ttl), "long")
	for end := time.Now().Add(6 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
		if _, err := m2.TryLock(ctxFor(t, 5*time.Second)); !errors.Is(err, lock.ErrLocked) {
			t.Fatalf("TryLock while held: err = %v, want ErrLocked", err)
		}
		if err := g.Err(); err != nil {
			t.Fatalf("holder lost the lock while its session was renewed: %v", err)
		}
		pttl := raw.PTTL(ctxFor(t, time.Second), "hb:lock:{long}").Val()
		if pttl <= 0 || pttl > ttl {
			t.Fatalf("lock key PTTL %s, want within (0, %s]: renewed, never persistent", pttl, ttl)
		}
	}
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("unlock after 6 TTLs: %v", err)
	}
}

func TestCloseReleasesAtOnceAndWakesTheWaiter(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("close"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second // expiry cannot explain a prompt hand-over
	s1 := newSession(t, c, ttl)
	g1 := mustLock(t, newMutex(t, s1, "l"))
	waiting := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 2)
	closed := time.Now()
	if err := s1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatalf("waiter: %v", r.err)
		}
		if d := r.at.Sub(closed); d > time.Second {
			t.Fatalf("waiter acquired %s after Close, want at once", d)
		}
		if r.g.Token() <= g1.Token() {
			t.Fatalf("token %d after %d", r.g.Token(), g1.Token())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by Close")
	}
	expectClosed(t, g1.Done(), time.Second, "holder's Done after Close")
	expectErr(t, g1.Err(), lock.ErrLockLost, coord.ErrSessionClosed)
	expectErr(t, s1.Err(), coord.ErrSessionClosed)
	if n := raw.Exists(ctxFor(t, time.Second), "close:session:"+s1.ID(), "close:session:"+s1.ID()+":owned").Val(); n != 0 {
		t.Fatalf("%d session keys left after Close", n)
	}
	if err := s1.Close(ctxFor(t, time.Second)); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
}

func TestExpiredSessionIsLostAndWaiterProceeds(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("exp"))
	const ttl = 1500 * time.Millisecond
	s1 := newSession(t, c, ttl)
	g1 := mustLock(t, newMutex(t, s1, "l"))
	waiting := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 2)
	if err := c.Driver().(driver.Expirer).ExpireSession(ctxFor(t, 5*time.Second), s1.ID()); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, s1.Done(), ttl/3+time.Second, "session Done after server-side expiry")
	expectErr(t, s1.Err(), coord.ErrSessionExpired)
	expectClosed(t, g1.Done(), time.Second, "holder's Done after expiry")
	expectErr(t, g1.Err(), lock.ErrLockLost, coord.ErrSessionExpired)
	if err := g1.Unlock(ctxFor(t, 5*time.Second)); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("Unlock after expiry: err = %v, want ErrNotHeld", err)
	}
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatalf("waiter: %v", r.err)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not proceed after the holder's session expired")
	}
	if err := c.Driver().(driver.Expirer).ExpireSession(ctxFor(t, 5*time.Second), "not-an-id"); err == nil {
		t.Fatal("ExpireSession accepted a malformed ID")
	}
}

// A holder cut off from Redis declares its session lost before the server
// expires its keys: nobody else can hold the lock while the cut-off holder
// still believes it does.
func TestPartitionedHolderLearnsOfLossBeforeOthersAcquire(t *testing.T) {
	srv := local.StartRedis(t)
	px := startProxy(t, srv.Addr)
	cut := newRedisClient(t, px.Addr(), coord.WithNamespace("part"))
	c := openURL(t, srv.URL, coord.WithNamespace("part"))
	const ttl = time.Second
	s1 := newSession(t, cut, ttl)
	g1 := mustLock(t, newMutex(t, s1, "l"))
	waiting := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, 10*time.Second), "l"))
	waitContenders(t, c, "l", 2)
	frozen := time.Now()
	px.Freeze()
	expectClosed(t, g1.Done(), ttl+500*time.Millisecond, "cut-off holder's Done")
	lostAt := time.Now()
	expectErr(t, g1.Err(), lock.ErrLockLost, coord.ErrSessionExpired)
	if d := lostAt.Sub(frozen); d > ttl {
		t.Fatalf("cut-off holder learned of the loss %s after the partition, want within the TTL (%s)", d, ttl)
	}
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatalf("waiter: %v", r.err)
		}
		if !r.at.After(lostAt) {
			t.Fatalf("waiter acquired at %s, before the cut-off holder knew it had lost (%s)", r.at.Format(time.StampMicro), lostAt.Format(time.StampMicro))
		}
		if d := r.at.Sub(frozen); d > ttl+time.Second {
			t.Fatalf("waiter acquired %s after the holder was cut off, want within TTL+1s", d)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("waiter did not acquire after the cut-off holder's keys expired")
	}
}

func TestServerKilledLosesSessionsAndUnblocksLock(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("kill"))
	const ttl = time.Second
	s1 := newSession(t, c, ttl)
	g1 := mustLock(t, newMutex(t, s1, "l"))
	s2 := newSession(t, c, ttl)
	waiting := lockAsync(ctxFor(t, 30*time.Second), newMutex(t, s2, "l"))
	waitContenders(t, c, "l", 2)
	killed := time.Now()
	srv.Process.Kill()
	expectClosed(t, s1.Done(), ttl+500*time.Millisecond, "holder session Done after the server was killed")
	expectErr(t, g1.Err(), lock.ErrLockLost, coord.ErrSessionExpired)
	select {
	case r := <-waiting:
		if r.err == nil {
			t.Fatal("blocked Lock acquired with the server dead")
		}
		expectErr(t, r.err, coord.ErrSessionExpired)
		if d := r.at.Sub(killed); d > ttl+time.Second {
			t.Fatalf("blocked Lock returned %s after the kill, want within TTL+1s", d)
		}
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("blocked Lock hangs after the server was killed")
	}
	start := time.Now()
	_ = s1.Close(context.Background())
	_ = s2.Close(context.Background())
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closing lost sessions took %s", d)
	}
}

// A paused (SIGSTOP) server answers nothing: sessions are lost within the TTL
// and a blocked Lock returns, bounded by its BLPOP deadline and clean-up.
func TestServerPausedLosesSessionsAndUnblocksLock(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("pause"))
	const ttl = time.Second
	s1 := newSession(t, c, ttl)
	g1 := mustLock(t, newMutex(t, s1, "l"))
	s2 := newSession(t, c, ttl)
	waiting := lockAsync(ctxFor(t, 30*time.Second), newMutex(t, s2, "l"))
	waitContenders(t, c, "l", 2)
	paused := time.Now()
	srv.Process.Pause()
	defer srv.Process.Resume()
	expectClosed(t, s1.Done(), ttl, "holder session Done after the server was paused")
	expectErr(t, g1.Err(), lock.ErrLockLost, coord.ErrSessionExpired)
	t.Logf("holder lost %s after the pause", time.Since(paused).Round(time.Millisecond))
	select {
	case r := <-waiting:
		expectErr(t, r.err, coord.ErrSessionExpired)
		t.Logf("blocked Lock returned %s after the pause", r.at.Sub(paused).Round(time.Millisecond))
		if d := r.at.Sub(paused); d > 3*ttl {
			t.Fatalf("blocked Lock returned %s after the pause, want within 3 TTLs", d)
		}
	case <-time.After(ttl + 6*time.Second):
		t.Fatal("blocked Lock hangs while the server is paused")
	}
}

// Close releases every lock of the session, on every name, in one step.
func TestCloseReleasesEveryLockOfTheSession(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("all"))
	const ttl = 30 * time.Second
	s1 := newSession(t, c, ttl)
	names := []string{"a", "b/c", "d:e"}
	var waiting []<-chan result
	for _, name := range names {
		mustLock(t, newMutex(t, s1, name))
		waiting = append(waiting, lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), name)))
		waitContenders(t, c, name, 2)
	}
	if err := s1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, ch := range waiting {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("%s: %v", names[i], r.err)
			}
			_ = r.g.Unlock(ctxFor(t, 5*time.Second))
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: waiter not woken by Close", names[i])
		}
	}
}

// A Lock call that finds its session key gone on the server ends the session
// at once, without waiting for the next renewal.
func TestLockOnASessionExpiredOnTheServer(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("gone"))
	raw := rawClient(t, srv.Addr)
	s := newSession(t, c, 30*time.Second)
	if err := raw.Del(ctxFor(t, time.Second), "gone:session:"+s.ID()).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := newMutex(t, s, "l").Lock(ctxFor(t, 5*time.Second))
	expectErr(t, err, coord.ErrSessionExpired)
	expectClosed(t, s.Done(), time.Second, "session Done")
	if n := contenders(t, c, "l"); n != 0 {
		t.Fatalf("%d contenders after a Lock on an expired session", n)
	}
}
