package consulcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/election"
)

func newElection(t testing.TB, s *coord.Session, name string) *election.Election {
	t.Helper()
	e, err := election.New(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustCampaign(t testing.TB, e *election.Election, value string) *election.Term {
	t.Helper()
	term, err := e.Campaign(ctxFor(t, 10*time.Second), []byte(value))
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	return term
}

// campaignAsync starts e.Campaign in the background.
func campaignAsync(t testing.TB, e *election.Election, value string, d time.Duration) (<-chan *election.Term, <-chan error) {
	got, errc := make(chan *election.Term, 1), make(chan error, 1)
	ctx := ctxFor(t, d)
	go func() {
		term, err := e.Campaign(ctx, []byte(value))
		if err != nil {
			errc <- err
			return
		}
		got <- term
	}()
	return got, errc
}

func resign(t testing.TB, term *election.Term) {
	t.Helper()
	if err := term.Resign(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("resign: %v", err)
	}
}

// A resign wakes only the next candidate; candidates win in arrival order.
func testElectionHerdFree(t *testing.T, a *local.Consul, _ *api.Client) {
	const waiters = 4
	ns := uniqueNS(t)
	c0 := openURL(t, a.URL, coord.WithNamespace(ns))
	leader := mustCampaign(t, newElection(t, newSession(t, c0), "herd"), "first")
	counters := make([]*countingTransport, waiters)
	gots := make([]<-chan *election.Term, waiters)
	for i := range waiters {
		c, ct := counted(t, a, ns)
		counters[i] = ct
		gots[i], _ = campaignAsync(t, newElection(t, newSession(t, c), "herd"), "w", 30*time.Second)
		waitRecipe(t, c0, "election", "herd", i+2)
	}
	time.Sleep(100 * time.Millisecond) // let the last candidate park its query
	before := make([]int64, waiters)
	for i, ct := range counters {
		before[i] = ct.n.Load()
	}
	resign(t, leader)
	next := within(t, gots[0], 5*time.Second, "first candidate")
	time.Sleep(300 * time.Millisecond)
	if n := counters[0].n.Load() - before[0]; n > 1 {
		t.Errorf("the next candidate sent %d requests to take over; want 1 (list)", n)
	}
	for i := 1; i < waiters; i++ {
		quiet(t, "a later candidate", counters[i], before[i])
	}
	prev := next.Token()
	if prev <= leader.Token() {
		t.Fatalf("token %d after %d", prev, leader.Token())
	}
	for i := 1; i < waiters; i++ {
		resign(t, next)
		next = within(t, gots[i], 5*time.Second, "next candidate in arrival order")
		if next.Token() <= prev {
			t.Fatalf("token %d after %d", next.Token(), prev)
		}
		prev = next.Token()
	}
	resign(t, next)
	waitRecipe(t, c0, "election", "herd", 0)
}

// Two candidacies of one session are distinct: the second does not mistake
// the first's key (same session) for its own.
func testElectionSameSession(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s := newSession(t, c)
	first := mustCampaign(t, newElection(t, s, "same"), "a")
	got, errc := campaignAsync(t, newElection(t, s, "same"), "b", 30*time.Second)
	waitRecipe(t, c, "election", "same", 2)
	select {
	case <-got:
		t.Fatal("a second candidacy of the leader's session became leader too")
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(300 * time.Millisecond):
	}
	resign(t, first)
	second := within(t, got, 5*time.Second, "second candidacy after the first resigned")
	if second.Token() <= first.Token() || string(second.Value()) != "b" {
		t.Fatalf("second term token %d value %q; first token %d", second.Token(), second.Value(), first.Token())
	}
	resign(t, second)
}

// A successor of a leader whose session was invalidated waits that session's
// lock-delay (recorded in the candidacy's flags).
func testElectionLockDelay(t *testing.T, a *local.Consul, _ *api.Client) {
	const delay = 2 * time.Second
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	s1 := newSession(t, c, coord.SessionLockDelay(delay))
	old := mustCampaign(t, newElection(t, s1, "delay"), "old")
	got, errc := campaignAsync(t, newElection(t, newSession(t, c), "delay"), "new", 30*time.Second)
	waitRecipe(t, c, "election", "delay", 2)
	start := time.Now()
	if err := c.Driver().(*client).ExpireSession(ctxFor(t, 5*time.Second), s1.ID()); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, old.Done(), 3*time.Second, "expired leader's term")
	if err := old.Err(); !errors.Is(err, coord.ErrLeadershipLost) || !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("expired term Err() = %v", err)
	}
	select {
	case term := <-got:
		if took := time.Since(start); took < delay || took > delay+2*time.Second {
			t.Fatalf("successor elected after %s; want the %s lock-delay", took, delay)
		}
		resign(t, term)
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no successor")
	}
}

func testProclaim(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	s := newSession(t, c)
	e := newElection(t, s, "proclaim")
	term := mustCampaign(t, e, "v1")
	o, err := election.Observe(ctxFor(t, 30*time.Second), c, "proclaim")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	if l := within(t, o.C(), 5*time.Second, "observer"); string(l.Value) != "v1" || l.Token != term.Token() {
		t.Fatalf("observed %+v", l)
	}
	for _, v := range []string{"v2", "v3"} {
		if err := term.Proclaim(ctxFor(t, 5*time.Second), []byte(v)); err != nil {
			t.Fatal(err)
		}
		if l := within(t, o.C(), 5*time.Second, "observer after proclaim"); string(l.Value) != v || l.Token != term.Token() {
			t.Fatalf("observed %+v after proclaiming %s", l, v)
		}
	}
	if string(term.Value()) != "v3" {
		t.Fatalf("Value() = %q", term.Value())
	}
	pairs, _, err := cli.KV().List(ns+"/election/proclaim/", nil)
	if err != nil || len(pairs) != 1 || pairs[0].Session != s.ID() || pairs[0].CreateIndex != uint64(term.Token()) {
		t.Fatalf("candidacy after proclaim: %+v, %v; want still acquired by %s", pairs, err, s.ID())
	}
	resign(t, term) // compare-and-delete on the ModifyIndex Proclaim left
	if err := term.Proclaim(ctxFor(t, 5*time.Second), []byte("late")); !errors.Is(err, coord.ErrNotLeader) {
		t.Fatalf("Proclaim after Resign: %v, want ErrNotLeader", err)
	}
	if l := within(t, o.C(), 5*time.Second, "observer after resign"); l.Elected() {
		t.Fatalf("observed %+v after the only leader resigned", l)
	}
}

// A candidacy deleted behind the leader's back: Proclaim fails with
// ErrNotLeader and ends the term as lost instead of recreating the key.
func testProclaimDeleted(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	term := mustCampaign(t, newElection(t, newSession(t, c), "del"), "v")
	if _, err := cli.KV().DeleteTree(ns+"/election/del/", nil); err != nil {
		t.Fatal(err)
	}
	err := term.Proclaim(ctxFor(t, 5*time.Second), []byte("w"))
	if !errors.Is(err, coord.ErrNotLeader) {
		t.Fatalf("Proclaim on a deleted candidacy: %v, want ErrNotLeader", err)
	}
	closedWithin(t, term.Done(), time.Second, "term after a failed Proclaim")
	if !errors.Is(term.Err(), coord.ErrLeadershipLost) {
		t.Fatalf("Err() = %v, want ErrLeadershipLost", term.Err())
	}
	if n := recipeContenders(t, c, "election", "del"); n != 0 {
		t.Fatalf("Proclaim recreated the candidacy (%d entries)", n)
	}
	if err := term.Resign(ctxFor(t, 5*time.Second)); !errors.Is(err, coord.ErrNotLeader) {
		t.Fatalf("Resign of a lost term: %v, want ErrNotLeader", err)
	}
}

// A Resign that cannot reach the agent fails and leaves the term held.
func testFailedResign(t *testing.T, a *local.Consul, _ *api.Client) {
	p := local.NewProxy(t, a.Addr)
	ns := uniqueNS(t)
	cut := openURL(t, "consul://"+p.Addr(), coord.WithNamespace(ns))
	direct := openURL(t, a.URL, coord.WithNamespace(ns))
	term := mustCampaign(t, newElection(t, newSession(t, cut), "resign"), "v")
	p.Block()
	t.Cleanup(p.Unblock)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := term.Resign(ctx); err == nil {
		t.Fatal("Resign succeeded through a partition")
	}
	if err := term.Err(); err != nil {
		t.Fatalf("term ended by a failed Resign: %v", err)
	}
	if n := recipeContenders(t, direct, "election", "resign"); n != 1 {
		t.Fatalf("%d candidacies after a failed Resign, want 1", n)
	}
	p.Unblock()
	// The proxy closed the connections it cut; the client's first request may
	// still meet one (EOF). A failed Resign leaves the term held, so the
	// caller retries, as a user would.
	var err error
	for i := 0; i < 3; i++ {
		if err = term.Resign(ctxFor(t, 5*time.Second)); err == nil || !errors.Is(err, coord.ErrUnavailable) {
			break
		}
		if term.Err() != nil {
			t.Fatalf("term ended by a failed Resign: %v", term.Err())
		}
	}
	if err != nil {
		t.Fatalf("resign after the partition healed: %v", err)
	}
	if !errors.Is(term.Err(), coord.ErrNotLeader) {
		t.Fatalf("Err() after Resign = %v", term.Err())
	}
	waitRecipe(t, direct, "election", "resign", 0)
}

// An observer cut off while the leadership changes delivers the latest
// state once it can reach the agent again.
func testObservePartition(t *testing.T, a *local.Consul, _ *api.Client) {
	p := local.NewProxy(t, a.Addr)
	ns := uniqueNS(t)
	cut := openURL(t, "consul://"+p.Addr(), coord.WithNamespace(ns))
	direct := openURL(t, a.URL, coord.WithNamespace(ns))
	first := mustCampaign(t, newElection(t, newSession(t, direct), "part"), "a")
	o, err := election.Observe(ctxFor(t, time.Minute), cut, "part")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	if l := within(t, o.C(), 5*time.Second, "observer"); l.Token != first.Token() {
		t.Fatalf("observed %+v, want token %d", l, first.Token())
	}
	got, _ := campaignAsync(t, newElection(t, newSession(t, direct), "part"), "b", 30*time.Second)
	waitRecipe(t, direct, "election", "part", 2)
	p.Block()
	t.Cleanup(p.Unblock)
	resign(t, first)
	second := within(t, got, 5*time.Second, "successor")
	if err := second.Proclaim(ctxFor(t, 5*time.Second), []byte("b2")); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-o.C():
		t.Fatalf("observer delivered %+v through a partition", l)
	case <-time.After(300 * time.Millisecond):
	}
	p.Unblock()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-o.C():
			if l.Token == second.Token() && string(l.Value) == "b2" {
				resign(t, second)
				return
			}
		case <-o.Done():
			t.Fatalf("observer stopped: %v", o.Err())
		case <-deadline:
			t.Fatal("observer did not deliver the latest state after the partition healed")
		}
	}
}

// Candidates queueing behind the leader change nothing an observer sees.
func testObserveQuiet(t *testing.T, a *local.Consul, _ *api.Client) {
	c := openURL(t, a.URL, coord.WithNamespace(uniqueNS(t)))
	leader := mustCampaign(t, newElection(t, newSession(t, c), "quiet"), "a")
	ctx, cancel := context.WithCancel(context.Background())
	o, err := election.Observe(ctx, c, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	within(t, o.C(), 5*time.Second, "observer")
	got, _ := campaignAsync(t, newElection(t, newSession(t, c), "quiet"), "b", 30*time.Second)
	waitRecipe(t, c, "election", "quiet", 2)
	select {
	case l := <-o.C():
		t.Fatalf("observer delivered %+v when a candidate queued", l)
	case <-time.After(300 * time.Millisecond):
	}
	resign(t, leader)
	next := within(t, got, 5*time.Second, "successor")
	if l := within(t, o.C(), 5*time.Second, "observer after resign"); l.Token != next.Token() {
		t.Fatalf("observed %+v, want token %d", l, next.Token())
	}
	cancel()
	closedWithin(t, o.Done(), 2*time.Second, "observer after its ctx was cancelled")
	if !errors.Is(o.Err(), context.Canceled) {
		t.Fatalf("observer Err() = %v, want context.Canceled", o.Err())
	}
	resign(t, next)
}

func testElectionCorrupt(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL, coord.WithNamespace(ns))
	if _, err := cli.KV().Put(&api.KVPair{Key: ns + "/election/bad/intruder", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := election.LeaderOf(ctxFor(t, 5*time.Second), c, "bad"); !errors.Is(err, coord.ErrCorrupt) {
		t.Fatalf("Leader over a foreign key: %v, want ErrCorrupt", err)
	}
	if _, err := newElection(t, newSession(t, c), "bad").Campaign(ctxFor(t, 5*time.Second), nil); !errors.Is(err, coord.ErrCorrupt) {
		t.Fatalf("Campaign over a foreign key: %v, want ErrCorrupt", err)
	}
	if keys := keysUnder(t, cli, ns+"/election/bad/"); len(keys) != 1 {
		t.Fatalf("keys %v: the failed Campaign left its candidacy behind", keys)
	}
	o, err := election.Observe(ctxFor(t, 10*time.Second), c, "bad")
	if err != nil {
		t.Fatal(err)
	}
	closedWithin(t, o.Done(), 5*time.Second, "observer over a foreign key")
	if !errors.Is(o.Err(), coord.ErrCorrupt) {
		t.Fatalf("observer Err() = %v, want ErrCorrupt", o.Err())
	}
}
