package consulcoord

import (
	"context"
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

func testWaiterSessionLost(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	g1 := mustLock(t, mutex(t, newSession(t, c), "wlost"))
	s2 := newSession(t, c)
	_, errc := lockAsync(t, mutex(t, s2, "wlost"), 30*time.Second)
	waitContenders(t, c, "wlost", 2)
	if err := c.Driver().(*client).ExpireSession(ctxFor(t, 5*time.Second), s2.ID()); err != nil {
		t.Fatal(err)
	}
	err := within(t, errc, 3*time.Second, "waiting Lock after its session was expired")
	if !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("Lock err = %v, want ErrSessionExpired", err)
	}
	waitContenders(t, c, "wlost", 1)
	if err := g1.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func testFIFO(t *testing.T, a *local.Consul, _ *api.Client) {
	const waiters = 5
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	g0 := mustLock(t, mutex(t, newSession(t, c), "fifo"))
	order := make(chan int, waiters)
	errc := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		m := mutex(t, newSession(t, c), "fifo")
		ctx := ctxFor(t, 30*time.Second)
		go func() {
			g, err := m.Lock(ctx)
			if err != nil {
				errc <- err
				return
			}
			order <- i
			time.Sleep(5 * time.Millisecond)
			if err := g.Unlock(ctx); err != nil {
				errc <- err
			}
		}()
		waitContenders(t, c, "fifo", i+2) // arrival order is fixed
	}
	if err := g0.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for want := 0; want < waiters; want++ {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("waiter %d acquired in position %d; want arrival order", got, want)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d waiters acquired", want, waiters)
		}
	}
	waitContenders(t, c, "fifo", 0)
}

// Four clients loop Lock/Unlock on one name: with a FIFO queue each gets
// about a quarter of the cycles (Consul's api.Lock lets one client take
// nearly all of them).
func testFairContention(t *testing.T, a *local.Consul, _ *api.Client) {
	const clients, run = 4, 2 * time.Second
	ns := uniqueNS(t)
	counts := make([]int, clients)
	errc := make(chan error, clients)
	stop := time.Now().Add(run)
	for i := 0; i < clients; i++ {
		m := mutex(t, newSession(t, openURL(t, a.URL, coord.WithNamespace(ns))), "fair")
		ctx := ctxFor(t, 30*time.Second)
		go func() {
			for time.Now().Before(stop) {
				g, err := m.Lock(ctx)
				if err != nil {
					errc <- err
					return
				}
				counts[i]++
				if err := g.Unlock(ctx); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for i := 0; i < clients; i++ {
		if err := within(t, errc, 30*time.Second, "contending client"); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("%d clients: %d lock cycles in %s (%.0f/s; agent -dev, Raft in memory, race detector %v), per client %v",
		clients, total, run, float64(total)/run.Seconds(), raceEnabled, counts)
	for i, n := range counts {
		if n*clients*10 < total*7 { // each within 70% of a fair share
			t.Fatalf("client %d got %d of %d cycles: unfair %v", i, n, total, counts)
		}
	}
}

func testLockDelay(t *testing.T, a *local.Consul, _ *api.Client) {
	const delay = 2 * time.Second
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	// Invalidated holder: the successor waits the holder's lock-delay.
	s1 := newSession(t, c, coord.SessionLockDelay(delay))
	mustLock(t, mutex(t, s1, "delay"))
	got, errc := lockAsync(t, mutex(t, newSession(t, c), "delay"), 30*time.Second)
	waitContenders(t, c, "delay", 2)
	start := time.Now()
	if err := c.Driver().(*client).ExpireSession(ctxFor(t, 5*time.Second), s1.ID()); err != nil {
		t.Fatal(err)
	}
	var g2 *lock.Guard
	select {
	case g2 = <-got:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("successor not granted")
	}
	if took := time.Since(start); took < delay || took > delay+2*time.Second {
		t.Fatalf("successor of an invalidated holder acquired after %s; want the %s lock-delay", took, delay)
	}
	// Released holder: no delay.
	got, errc = lockAsync(t, mutex(t, newSession(t, c, coord.SessionLockDelay(delay)), "delay"), 30*time.Second)
	waitContenders(t, c, "delay", 2)
	start = time.Now()
	if err := g2.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		if took := time.Since(start); took > time.Second {
			t.Fatalf("successor of a released holder acquired after %s; want no lock-delay", took)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("successor not granted")
	}
}

func testCorrupt(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	if _, err := cli.KV().Put(&api.KVPair{Key: ns + "/lock/bad/intruder", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := mutex(t, newSession(t, c), "bad").Lock(ctxFor(t, 5*time.Second))
	if !errors.Is(err, coord.ErrCorrupt) {
		t.Fatalf("Lock over a foreign key: %v, want ErrCorrupt", err)
	}
	if keys := keysUnder(t, cli, ns+"/lock/bad/"); len(keys) != 1 {
		t.Fatalf("keys %v: the failed Lock left its own key behind", keys)
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
