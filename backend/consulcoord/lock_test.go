package consulcoord

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

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

// A release wakes only the next waiter: the others' blocking queries on their
// own predecessors stay parked and they send no request.
func testHerdFree(t *testing.T, a *local.Consul, _ *api.Client) {
	const waiters = 4
	ns := uniqueNS(t)
	c0 := openURL(t, a.URL, coord.WithNamespace(ns))
	g0 := mustLock(t, mutex(t, newSession(t, c0), "herd"))
	counters := make([]*countingTransport, waiters)
	gots := make([]<-chan *lock.Guard, waiters)
	for i := range waiters {
		cli, ct := nativeClient(t, a.Addr)
		c, err := New(cli, coord.WithNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		counters[i] = ct
		gots[i], _ = lockAsync(t, mutex(t, newSession(t, c), "herd"), 30*time.Second)
		waitContenders(t, c0, "herd", i+2)
	}
	time.Sleep(100 * time.Millisecond) // let the last waiter park its query
	before := make([]int64, waiters)
	for i, ct := range counters {
		before[i] = ct.n.Load()
	}
	if err := g0.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	g1 := within(t, gots[0], 5*time.Second, "first waiter")
	time.Sleep(300 * time.Millisecond)
	if n := counters[0].n.Load() - before[0]; n > 2 {
		t.Errorf("the woken waiter sent %d requests to take over; want 2 (query answer, list)", n)
	}
	for i := 1; i < waiters; i++ {
		if n := counters[i].n.Load() - before[i]; n != 0 {
			t.Errorf("waiter %d sent %d requests on a release that was not its predecessor's", i+1, n)
		}
	}
	g := g1
	for i := 1; i < waiters; i++ {
		if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		g = within(t, gots[i], 5*time.Second, "next waiter")
	}
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}
