package etcdcoord

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

func TestSessionTTLRoundedUp(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s := newSession(t, c, 2500*time.Millisecond)
	if s.TTL() != 3*time.Second {
		t.Fatalf("TTL() = %v for a 2.5s request, want 3s", s.TTL())
	}
	if s.ID() == "" {
		t.Fatal("empty session ID")
	}
}

func TestSessionKeepAliveKeepsKeysPastTTL(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s := newSession(t, c, 2*time.Second)
	m, _ := lock.NewMutex(s, "kept")
	g, err := m.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * s.TTL())
	if err := s.Err(); err != nil {
		t.Fatalf("session lost while its server was up: %v", err)
	}
	if err := g.Err(); err != nil {
		t.Fatalf("lock lost while its session was live: %v", err)
	}
	if n := contenders(t, c, "kept"); n != 1 {
		t.Fatalf("%d lock keys after 3×TTL, want 1 (kept alive)", n)
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestSessionCloseReleasesAtOnce(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	s1 := newSession(t, c, 30*time.Second) // a TTL far longer than the test
	m1, _ := lock.NewMutex(s1, "close")
	g1, err := m1.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := lock.NewMutex(newSession(t, c, 30*time.Second), "close")
	got := make(chan *lock.Guard, 1)
	errc := make(chan error, 1)
	go func() {
		g, err := m2.Lock(testCtx(t, 20*time.Second))
		if err != nil {
			errc <- err
			return
		}
		got <- g
	}()
	waitContenders(t, c, "close", 2)
	start := time.Now()
	if err := s1.Close(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g1.Done():
	default:
		t.Fatal("guard not done right after its session was closed")
	}
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(g1.Err(), coord.ErrSessionClosed) {
		t.Fatalf("guard Err() = %v, want ErrLockLost and ErrSessionClosed", g1.Err())
	}
	if !errors.Is(s1.Err(), coord.ErrSessionClosed) {
		t.Fatalf("session Err() = %v, want ErrSessionClosed", s1.Err())
	}
	select {
	case g2 := <-got:
		took := time.Since(start)
		if took > time.Second {
			t.Errorf("waiter acquired %v after the holder's session closed, want at once", took)
		}
		if g2.Token() <= g1.Token() {
			t.Errorf("token %d after %d", g2.Token(), g1.Token())
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not acquire after the holder's session was closed")
	}
	if err := s1.Close(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m1.Lock(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrSessionClosed) {
		t.Fatalf("Lock on a closed session: %v, want ErrSessionClosed", err)
	}
}

// TestExpireSessionEndsSessionAndLock revokes the lease on the server. The
// sessions have a 30s TTL, so their keep-alive would only hear of it after
// about 10s: noticing it within 2s shows that the session's marker watch
// reported it, for a session holding a lock and for one holding nothing.
func TestExpireSessionEndsSessionAndLock(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	const ttl, prompt = 30 * time.Second, 2 * time.Second
	s := newSession(t, c, ttl)
	m, _ := lock.NewMutex(s, "expire")
	g, err := m.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := driverOf(t, c).ExpireSession(testCtx(t, 5*time.Second), s.ID()); err != nil {
		t.Fatal(err)
	}
	if n := contenders(t, c, "expire"); n != 0 {
		t.Fatalf("%d lock keys right after the lease was revoked, want 0", n)
	}
	select {
	case <-g.Done():
	case <-time.After(prompt):
		t.Fatalf("guard not done %v after the server revoked the lease (TTL %v)", prompt, s.TTL())
	}
	t.Logf("guard noticed the expiry after %v (TTL %v)", time.Since(start).Round(time.Millisecond), s.TTL())
	if !errors.Is(s.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s.Err())
	}
	if !errors.Is(g.Err(), coord.ErrLockLost) || !errors.Is(g.Err(), coord.ErrSessionExpired) {
		t.Fatalf("guard Err() = %v, want ErrLockLost and ErrSessionExpired", g.Err())
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
		t.Fatalf("Unlock after expiry: %v, want ErrNotHeld", err)
	}
	if err := driverOf(t, c).ExpireSession(testCtx(t, 5*time.Second), s.ID()); err != nil {
		t.Fatalf("expiring a gone lease: %v", err)
	}
	bare := newSession(t, c, ttl)
	start = time.Now()
	if err := driverOf(t, c).ExpireSession(testCtx(t, 5*time.Second), bare.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bare.Done():
	case <-time.After(prompt):
		t.Fatalf("lockless session not done %v after the server revoked its lease", prompt)
	}
	t.Logf("lockless session noticed the expiry after %v (TTL %v)", time.Since(start).Round(time.Millisecond), bare.TTL())
	if !errors.Is(bare.Err(), coord.ErrSessionExpired) {
		t.Fatalf("lockless session Err() = %v, want ErrSessionExpired", bare.Err())
	}
	if err := driverOf(t, c).ExpireSession(testCtx(t, 5*time.Second), "not-hex"); err == nil {
		t.Fatal("ExpireSession accepted a malformed ID")
	}
}

// TestMarkerDeletedByHand deletes a session's marker key while its lease
// lives: the session must stay live (it puts the marker back) and still
// notice a later revocation at once.
func TestMarkerDeletedByHand(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 30*time.Second)
	key := d.root + "session/" + s.ID()
	if _, err := d.cli.Delete(testCtx(t, 5*time.Second), key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, err := d.cli.Get(testCtx(t, 5*time.Second), key)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) == 1 {
			if got := fmt.Sprintf("%x", g.Kvs[0].Lease); got != s.ID() {
				t.Fatalf("marker put back with lease %s, want %s", got, s.ID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("marker not put back within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended by a hand-deleted marker: %v", err)
	}
	if err := d.ExpireSession(testCtx(t, 5*time.Second), s.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("session not done 2s after its lease was revoked (the marker watch did not resume)")
	}
	if !errors.Is(s.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s.Err())
	}
}

// TestServerKilled checks the client-side deadline: with the server gone, no
// keep-alive answers, and the session must be lost after about one TTL even
// though no server can say so; a Lock waiting meanwhile must return.
func TestServerKilled(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	const ttl = 2 * time.Second
	s1 := newSession(t, c, ttl)
	s2 := newSession(t, c, ttl)
	m1, _ := lock.NewMutex(s1, "killed")
	g1, err := m1.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := lock.NewMutex(s2, "killed")
	errc := make(chan error, 1)
	go func() {
		g, err := m2.Lock(testCtx(t, 60*time.Second))
		if err == nil {
			_ = g.Unlock(testCtx(t, time.Second))
		}
		errc <- err
	}()
	waitContenders(t, c, "killed", 2)
	killed := time.Now()
	e.Process.Kill()

	select {
	case <-s1.Done():
	case <-time.After(ttl + 2*time.Second):
		t.Fatalf("session still live %v after the server was killed (TTL %v)", time.Since(killed), ttl)
	}
	lost := time.Since(killed)
	t.Logf("session lost %v after the server was killed (TTL %v)", lost.Round(time.Millisecond), ttl)
	if lost > ttl+1500*time.Millisecond {
		t.Errorf("session lost after %v, want about the TTL (%v)", lost, ttl)
	}
	if !errors.Is(s1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s1.Err())
	}
	select {
	case <-g1.Done():
	case <-time.After(time.Second):
		t.Fatal("guard not done after its session was lost")
	}
	if !errors.Is(g1.Err(), coord.ErrLockLost) {
		t.Fatalf("guard Err() = %v, want ErrLockLost", g1.Err())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, coord.ErrSessionExpired) {
			t.Fatalf("waiting Lock returned %v, want ErrSessionExpired", err)
		}
		t.Logf("waiting Lock returned %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(ttl + 3*time.Second):
		t.Fatal("waiting Lock still blocked after its session was lost")
	}
}
