package consulcoord

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

// TestAgent runs the backend's behaviour tests against one local Consul
// agent; run one with -run 'TestAgent/Name'.
func TestAgent(t *testing.T) {
	a := local.StartConsul(t)
	cli, _ := nativeClient(t, a.Addr)
	tests := []struct {
		name string
		fn   func(t *testing.T, a *local.Consul, cli *api.Client)
	}{
		{"KeysUnderURLPrefixAndNamespace", testKeyLayout},
		{"NewWrapsUserClientAndLeavesItOpen", testNew},
		{"SessionSettings", testSessionSettings},
		{"UncontendedLockIsOneRequest", testRequestCount},
		{"RenewalKeepsLockPastTwiceTTL", testRenewal},
		{"CloseReleasesAtOnce", testCloseReleases},
		{"ExpiryLosesLockAndWaiterProceeds", testExpiry},
		{"WaiterAbortsWhenItsSessionIsLost", testWaiterSessionLost},
		{"FIFO", testFIFO},
		{"FairUnderContention", testFairContention},
		{"HerdFree", testHerdFree},
		{"LockDelay", testLockDelay},
		{"CorruptEntry", testCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, a, cli)
		})
	}
}

func testKeyLayout(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL+"/apps/x", coord.WithNamespace(ns))
	s := newSession(t, c)
	g := mustLock(t, mutex(t, s, "jobs/nightly"))
	keys := keysUnder(t, cli, "apps/x/"+ns+"/lock/jobs/nightly/")
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "apps/x/"+ns+"/lock/jobs/nightly/"+s.ID()+"-") {
		t.Fatalf("keys %v, want one apps/x/%s/lock/jobs/nightly/%s-<nonce>", keys, ns, s.ID())
	}
	// A lock whose name extends another's is a separate queue.
	g2, err := mutex(t, s, "jobs/nightly/b").TryLock(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("lock jobs/nightly/b while jobs/nightly is held: %v", err)
	}
	if n := contenders(t, c, "jobs/nightly"); n != 1 {
		t.Fatalf("contenders of jobs/nightly = %d, want 1", n)
	}
	for _, g := range []*lock.Guard{g, g2} {
		if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if keys := keysUnder(t, cli, "apps/x/"+ns+"/"); len(keys) != 0 {
		t.Fatalf("keys left after unlock: %v", keys)
	}
}

func testNew(t *testing.T, a *local.Consul, _ *api.Client) {
	own, _ := nativeClient(t, a.Addr)
	ns := uniqueNS(t)
	c, err := New(own, coord.WithNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend() != "consul" {
		t.Fatalf("Backend() = %q", c.Backend())
	}
	s, err := c.NewSession(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	g := mustLock(t, mutex(t, s, "n"))
	if keys := keysUnder(t, own, ns+"/lock/n/"); len(keys) != 1 {
		t.Fatalf("keys %v, want one under %s/lock/n/", keys, ns)
	}
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Status().Leader(); err != nil {
		t.Fatalf("the user's client stopped working after coord's Close: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func testSessionSettings(t *testing.T, a *local.Consul, cli *api.Client) {
	c := openURL(t, a.URL)
	for _, tt := range []struct {
		opts      []coord.SessionOption
		ttl       time.Duration
		lockDelay time.Duration
	}{
		{nil, 10 * time.Second, 0},
		{[]coord.SessionOption{coord.SessionTTL(3 * time.Second)}, 10 * time.Second, 0},
		{[]coord.SessionOption{coord.SessionTTL(12500 * time.Millisecond), coord.SessionLockDelay(2 * time.Second)}, 13 * time.Second, 2 * time.Second},
	} {
		s := newSession(t, c, tt.opts...)
		if s.TTL() != tt.ttl {
			t.Errorf("TTL() = %s, want %s", s.TTL(), tt.ttl)
		}
		info, _, err := cli.Session().Info(s.ID(), nil)
		if err != nil || info == nil {
			t.Fatalf("session info: %v, %v", info, err)
		}
		if info.TTL != tt.ttl.String() || info.Behavior != api.SessionBehaviorDelete || info.LockDelay != tt.lockDelay || len(info.NodeChecks) != 0 {
			t.Errorf("server-side session %+v; want TTL %s, behavior delete, lock-delay %s, no node checks", info, tt.ttl, tt.lockDelay)
		}
	}
	for _, bad := range []coord.SessionOption{coord.SessionTTL(25 * time.Hour), coord.SessionLockDelay(-time.Second), coord.SessionLockDelay(61 * time.Second)} {
		if s, err := c.NewSession(ctxFor(t, 5*time.Second), bad); err == nil {
			_ = s.Close(ctxFor(t, 5*time.Second))
			t.Error("NewSession accepted a TTL or lock-delay outside Consul's range")
		}
	}
}

func testRequestCount(t *testing.T, a *local.Consul, _ *api.Client) {
	own, ct := nativeClient(t, a.Addr)
	c, err := New(own, coord.WithNamespace(uniqueNS(t)))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c)
	m := mutex(t, s, "count")
	for i := 0; i < 3; i++ {
		before := ct.n.Load()
		g := mustLock(t, m)
		locked := ct.n.Load()
		if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if l, u := locked-before, ct.n.Load()-locked; l != 1 || u != 1 {
			t.Fatalf("uncontended Lock took %d HTTP requests and Unlock %d; want 1 each", l, u)
		}
	}
}

func testRenewal(t *testing.T, a *local.Consul, cli *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s := newSession(t, c)
	g := mustLock(t, mutex(t, s, "renewed"))
	wait := 2*s.TTL() + 2*time.Second
	select {
	case <-g.Done():
		t.Fatalf("lock ended while renewed: %v", g.Err())
	case <-time.After(wait):
	}
	if info, _, err := cli.Session().Info(s.ID(), nil); err != nil || info == nil {
		t.Fatalf("after %s the server no longer has the session: %v", wait, err)
	}
	if _, err := mutex(t, newSession(t, c), "renewed").TryLock(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("TryLock by another session after %s: %v, want ErrLocked", wait, err)
	}
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func testCloseReleases(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s1 := newSession(t, c)
	g1 := mustLock(t, mutex(t, s1, "close"))
	got, errc := lockAsync(t, mutex(t, newSession(t, c), "close"), 30*time.Second)
	waitContenders(t, c, "close", 2)
	start := time.Now()
	if err := s1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case g2 := <-got:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("waiter acquired %s after Close; want at once", took)
		}
		if g2.Token() <= g1.Token() {
			t.Errorf("token %d after %d", g2.Token(), g1.Token())
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not granted within 5s of the holder's session Close")
	}
	closedWithin(t, g1.Done(), time.Second, "holder Done")
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(g1.Err(), coord.ErrSessionClosed) {
		t.Errorf("holder Err() = %v, want ErrLockLost wrapping ErrSessionClosed", g1.Err())
	}
	if !errors.Is(s1.Err(), coord.ErrSessionClosed) {
		t.Errorf("session Err() = %v, want ErrSessionClosed", s1.Err())
	}
	if err := s1.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testExpiry(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s1 := newSession(t, c)
	g1 := mustLock(t, mutex(t, s1, "expiry"))
	got, errc := lockAsync(t, mutex(t, newSession(t, c), "expiry"), 30*time.Second)
	waitContenders(t, c, "expiry", 2)
	if err := c.Driver().(*client).ExpireSession(ctxFor(t, 5*time.Second), s1.ID()); err != nil {
		t.Fatal(err)
	}
	// The session's blocking query sees the invalidation at once.
	// (renewals run every TTL/3, so a 1s bound proves the watch did it).
	closedWithin(t, s1.Done(), time.Second, "session Done after server-side expiry")
	if !errors.Is(s1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("session Err() = %v, want ErrSessionExpired", s1.Err())
	}
	closedWithin(t, g1.Done(), time.Second, "holder Done")
	if !errors.Is(g1.Err(), coord.ErrLockLost) || !errors.Is(g1.Err(), coord.ErrSessionExpired) {
		t.Fatalf("holder Err() = %v", g1.Err())
	}
	if err := g1.Unlock(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
		t.Fatalf("Unlock after expiry: %v, want ErrNotHeld", err)
	}
	select {
	case g2 := <-got:
		if g2.Token() <= g1.Token() {
			t.Errorf("token %d after %d", g2.Token(), g1.Token())
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not granted within 5s of the holder's expiry")
	}
}
