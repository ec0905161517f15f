package rediscoord_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
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

type campaignResult struct {
	term *election.Term
	err  error
	at   time.Time
}

func campaignAsync(ctx context.Context, e *election.Election, value string) <-chan campaignResult {
	ch := make(chan campaignResult, 1)
	go func() {
		tm, err := e.Campaign(ctx, []byte(value))
		ch <- campaignResult{tm, err, time.Now()}
	}()
	return ch
}

func count(t testing.TB, c *coord.Client, recipe, name string) int {
	t.Helper()
	n, err := c.Driver().(driver.Inspector).Contenders(ctxFor(t, 5*time.Second), recipe, name)
	if err != nil {
		t.Fatalf("contenders: %v", err)
	}
	return n
}

// waitCount polls the server's state (a test observation only) until recipe
// name has want contender entries.
func waitCount(t testing.TB, c *coord.Client, recipe, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n := count(t, c, recipe, name); n != want; n = count(t, c, recipe, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %d contender entries, want %d", recipe, name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Candidates become leader in arrival order, and a resign wakes only the
// successor: one hand-over is the resign script plus the successor's
// acquire, with nobody else going back to BLPOP.
func TestElectionFIFOAndHerdFree(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("eherd"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second // no renewal or safety re-check in the window
	e0 := newElection(t, newSession(t, c, ttl), "e")
	// Warm up: the first run of each script is an EVALSHA miss plus an EVAL.
	warm, err := e0.Campaign(ctxFor(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Resign(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	lead, err := e0.Campaign(ctxFor(t, 5*time.Second), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	waiting := make([]<-chan campaignResult, n)
	for i := range waiting {
		waiting[i] = campaignAsync(ctxFor(t, 30*time.Second), newElection(t, newSession(t, c, ttl), "e"), string(rune('1'+i)))
		waitCount(t, c, "election", "e", i+2)
	}
	time.Sleep(100 * time.Millisecond)
	prev := lead.Token()
	for i := range waiting {
		scripts0, blpops0 := scriptCalls(t, raw)
		if err := lead.Resign(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		var r campaignResult
		select {
		case r = <-waiting[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("candidate %d not elected after its predecessor resigned", i)
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := string(r.term.Value()); got != string(rune('1'+i)) {
			t.Fatalf("leader %d has value %q: not FIFO", i, got)
		}
		if r.term.Token() <= prev {
			t.Fatalf("term token %d after %d", r.term.Token(), prev)
		}
		prev = r.term.Token()
		time.Sleep(100 * time.Millisecond)
		scripts1, blpops1 := scriptCalls(t, raw)
		if d := scripts1 - scripts0; d != 2 {
			t.Fatalf("hand-over %d ran %d scripts, want 2 (resign + the successor's acquire)", i, d)
		}
		if d := blpops1 - blpops0; d != 0 {
			t.Fatalf("hand-over %d: %d candidates went back to BLPOP (stampede)", i, d)
		}
		lead = r.term
	}
	if err := lead.Resign(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, c, "election", "e", 0)
}

// Leadership is claimed only for the call's own candidacy: the leading
// candidacy of the same session does not make a second campaign of that
// session leader; the two are separate candidates.
func TestCampaignClaimsOnlyItsOwnCandidacy(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("eown"))
	s := newSession(t, c, 5*time.Second)
	e := newElection(t, s, "e")
	first, err := e.Campaign(ctxFor(t, 5*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	second := campaignAsync(ctxFor(t, 20*time.Second), e, "b")
	waitCount(t, c, "election", "e", 2)
	select {
	case r := <-second:
		t.Fatalf("a second campaign of the leader's session was elected: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := first.Resign(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.term.Token() <= first.Token() {
		t.Fatalf("token %d after %d", r.term.Token(), first.Token())
	}
	_ = r.term.Resign(ctxFor(t, 5*time.Second))
}

// Proclaim changes the value only while the candidacy exists and leads; once
// someone else removed it, Proclaim fails with ErrNotLeader and the term ends.
func TestProclaimIsCompareAndSet(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("eproc"))
	raw := rawClient(t, srv.Addr)
	e := newElection(t, newSession(t, c, 5*time.Second), "e")
	tm, err := e.Campaign(ctxFor(t, 5*time.Second), []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.Proclaim(ctxFor(t, 5*time.Second), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	l, err := e.Leader(ctxFor(t, 5*time.Second))
	if err != nil || string(l.Value) != "v2" || l.Token != tm.Token() {
		t.Fatalf("leader %+v, %v; want v2 with token %d", l, err, tm.Token())
	}
	if err := raw.Del(ctxFor(t, 5*time.Second), "eproc:election:{e}:q").Err(); err != nil {
		t.Fatal(err)
	}
	err = tm.Proclaim(ctxFor(t, 5*time.Second), []byte("v3"))
	expectErr(t, err, election.ErrNotLeader)
	expectClosed(t, tm.Done(), time.Second, "term after its candidacy was deleted")
	expectErr(t, tm.Err(), election.ErrLeadershipLost)
	if _, err := e.Leader(ctxFor(t, 5*time.Second)); !errors.Is(err, election.ErrNoLeader) {
		t.Fatalf("Leader: %v, want ErrNoLeader", err)
	}
}

// An observer whose subscription connection is killed re-subscribes and
// re-reads: a change made while it was disconnected is delivered, and it
// ends on the current leader.
func TestObserveRecoversFromADroppedSubscription(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("eobs"))
	raw := rawClient(t, srv.Addr)
	obs, err := election.Observe(ctxFor(t, 30*time.Second), c, "e")
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Stop()
	next := func(what string) election.Leader {
		t.Helper()
		select {
		case l := <-obs.C():
			return l
		case <-time.After(5 * time.Second):
			t.Fatalf("observer: no delivery for %s", what)
			return election.Leader{}
		}
	}
	if l := next("the initial state"); l.Elected() {
		t.Fatalf("initial state %+v, want no leader", l)
	}
	e := newElection(t, newSession(t, c, 30*time.Second), "e")
	tm, err := e.Campaign(ctxFor(t, 5*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if l := next("the first leader"); l.Token != tm.Token() {
		t.Fatalf("observed %+v, want token %d", l, tm.Token())
	}
	for i := 0; i < 3; i++ {
		if err := raw.Do(ctxFor(t, 5*time.Second), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		v := []byte{'b' + byte(i)}
		if err := tm.Proclaim(ctxFor(t, 5*time.Second), v); err != nil {
			t.Fatal(err)
		}
		// The value may arrive after a re-delivery of nothing new; wait for it.
		deadline := time.After(5 * time.Second)
		for got := false; !got; {
			select {
			case l := <-obs.C():
				got = bytes.Equal(l.Value, v)
			case <-deadline:
				t.Fatalf("round %d: value %q proclaimed during a reconnect never observed", i, v)
			}
		}
	}
	if err := tm.Resign(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if l := next("the resignation"); l.Elected() {
		t.Fatalf("observed %+v after the resign, want no leader", l)
	}
}

// With the server killed, a waiting Campaign returns the session's loss
// within about one TTL, a leader's term ends, and an observer keeps
// retrying until its ctx is done, then returns (no hang, no goroutine left).
func TestServerKilledEndsCampaignAndObserve(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("ekill"))
	const ttl = time.Second
	tm, err := newElection(t, newSession(t, c, ttl), "e").Campaign(ctxFor(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := campaignAsync(ctxFor(t, 30*time.Second), newElection(t, newSession(t, c, ttl), "e"), "w")
	waitCount(t, c, "election", "e", 2)
	octx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obsDone := make(chan error, 1)
	go func() {
		obsDone <- c.Driver().(driver.Elector).Observe(octx, "e", func(driver.LeaderInfo) {})
	}()
	time.Sleep(100 * time.Millisecond)
	srv.Process.Kill()
	expectClosed(t, tm.Done(), ttl+500*time.Millisecond, "term after the server was killed")
	expectErr(t, tm.Err(), election.ErrLeadershipLost, coord.ErrSessionExpired)
	select {
	case r := <-waiting:
		expectErr(t, r.err, coord.ErrSessionExpired)
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("a waiting Campaign hangs after the server was killed")
	}
	select {
	case err := <-obsDone:
		t.Fatalf("Observe gave up on a transient failure: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-obsDone:
		expectErr(t, err, context.Canceled)
	case <-time.After(3 * time.Second):
		t.Fatal("Observe did not return after its ctx was cancelled")
	}
}

// A leader cut off from Redis: Resign fails and leaves the term held; the
// term then ends as lost (session expired) before the successor, on a
// client that still reaches Redis, is elected.
func TestPartitionedLeaderKeepsTermUntilLoss(t *testing.T) {
	srv := local.StartRedis(t)
	px := startProxy(t, srv.Addr)
	cut := newRedisClient(t, px.Addr(), coord.WithNamespace("epart"))
	c := openURL(t, srv.URL, coord.WithNamespace("epart"))
	const ttl = time.Second
	tm, err := newElection(t, newSession(t, cut, ttl), "e").Campaign(ctxFor(t, 5*time.Second), []byte("cut"))
	if err != nil {
		t.Fatal(err)
	}
	next := campaignAsync(ctxFor(t, 20*time.Second), newElection(t, newSession(t, c, 10*time.Second), "e"), "next")
	waitCount(t, c, "election", "e", 2)
	px.Freeze()
	err = tm.Resign(ctxFor(t, 200*time.Millisecond))
	if err == nil {
		t.Fatal("Resign succeeded with Redis unreachable")
	}
	if tm.Err() != nil {
		t.Fatalf("a failed Resign ended the term: %v", tm.Err())
	}
	expectClosed(t, tm.Done(), ttl+500*time.Millisecond, "cut-off leader's term")
	lostAt := time.Now()
	expectErr(t, tm.Err(), election.ErrLeadershipLost, coord.ErrSessionExpired)
	select {
	case r := <-next:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if l, err := election.LeaderOf(ctxFor(t, 5*time.Second), c, "e"); err != nil || l.Token != r.term.Token() {
			t.Fatalf("leader %+v, %v; want the successor's token %d", l, err, r.term.Token())
		}
		if !r.at.After(lostAt) {
			t.Fatal("successor elected before the cut-off leader knew it had lost")
		}
		_ = r.term.Resign(ctxFor(t, 5*time.Second))
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("no successor after the cut-off leader's session expired")
	}
}
