package etcdcoord

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// recipeCount counts the entries recipe keeps for name.
func recipeCount(t testing.TB, c *coord.Client, recipe, name string) int {
	t.Helper()
	n, err := driverOf(t, c).Contenders(testCtx(t, 5*time.Second), recipe, name)
	if err != nil {
		t.Fatalf("contenders %s %q: %v", recipe, name, err)
	}
	return n
}

// waitRecipe polls (a test observation only) until recipe has want entries
// for name.
func waitRecipe(t testing.TB, c *coord.Client, recipe, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := recipeCount(t, c, recipe, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %d entries, want %d", recipe, name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectNone fails if ch delivers within d (the "nobody else woke" check).
func expectNone[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v, want nothing yet", what, v)
	case <-time.After(d):
	}
}

// TestCampaignFIFOAndHerdFree queues candidates on separate clients and
// checks that each resignation hands leadership to the oldest candidate only,
// with strictly increasing tokens, and that nothing is left at the end.
func TestCampaignFIFOAndHerdFree(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s0 := newSession(t, c, 10*time.Second)
	lead, err := d.Campaign(testCtx(t, 5*time.Second), s0.Driver(), "fifo", []byte("c0"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	won := make(chan int, n)
	terms := make([]driver.Term, n)
	for i := 0; i < n; i++ {
		ci := openClient(t, e.URL)
		s := newSession(t, ci, 10*time.Second)
		go func() {
			tm, err := driverOf(t, ci).Campaign(testCtx(t, 30*time.Second), s.Driver(), "fifo", []byte{byte(i)})
			if err != nil {
				t.Errorf("candidate %d: %v", i, err)
				won <- -1
				return
			}
			terms[i] = tm
			won <- i
		}()
		waitRecipe(t, c, "election", "fifo", i+2)
	}
	prev := lead
	for i := 0; i < n; i++ {
		if err := prev.Release(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(prev.Err(), coord.ErrNotHeld) {
			t.Fatalf("resigned term Err() = %v, want ErrNotHeld", prev.Err())
		}
		select {
		case got := <-won:
			if got != i {
				t.Fatalf("resignation %d went to candidate %d, want %d (FIFO)", i, got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no leader after resignation %d", i)
		}
		expectNone(t, won, 100*time.Millisecond, "another candidate woke")
		if terms[i].Token() <= prev.Token() {
			t.Fatalf("term token %d after %d", terms[i].Token(), prev.Token())
		}
		li, err := d.Leader(testCtx(t, 5*time.Second), "fifo")
		if err != nil || li.Token != terms[i].Token() || !bytes.Equal(li.Value, []byte{byte(i)}) {
			t.Fatalf("Leader() = %+v, %v; want token %d value %d", li, err, terms[i].Token(), i)
		}
		prev = terms[i]
	}
	if err := prev.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := recipeCount(t, c, "election", "fifo"); n != 0 {
		t.Fatalf("%d candidacies left", n)
	}
	if _, err := d.Leader(testCtx(t, 5*time.Second), "fifo"); !errors.Is(err, coord.ErrNoLeader) {
		t.Fatalf("Leader() with no candidate: %v, want ErrNoLeader", err)
	}
	if err := prev.Release(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
		t.Fatalf("second Resign: %v, want ErrNotHeld", err)
	}
}

// TestCampaignSameSessionIsSeparateCandidate checks the double-leader guard:
// a second Campaign of the leader's own session does not take its key for
// its own, and waits until the first term resigns.
func TestCampaignSameSessionIsSeparateCandidate(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second)
	t1, err := d.Campaign(testCtx(t, 5*time.Second), s.Driver(), "same", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan driver.Term, 1)
	go func() {
		t2, err := d.Campaign(testCtx(t, 30*time.Second), s.Driver(), "same", []byte("two"))
		if err != nil {
			t.Errorf("second campaign: %v", err)
		}
		won <- t2
	}()
	waitRecipe(t, c, "election", "same", 2)
	expectNone(t, won, 200*time.Millisecond, "second campaign of the leader's session")
	if err := t1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case t2 := <-won:
		if t2 == nil || t2.Token() <= t1.Token() {
			t.Fatalf("second term %v after token %d", t2, t1.Token())
		}
		if err := t2.Release(testCtx(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second campaign not elected after the first resigned")
	}
}

// TestProclaimAndLoss checks Proclaim (value visible to Leader), the term's
// end on session expiry (ErrLeadershipLost with ErrSessionExpired) and
// Proclaim/Resign on the ended term (ErrNotLeader, ErrNotHeld).
func TestProclaimAndLoss(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 2*time.Second)
	tm, err := d.Campaign(testCtx(t, 5*time.Second), s.Driver(), "proclaim", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.Proclaim(testCtx(t, 5*time.Second), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if li, err := d.Leader(testCtx(t, 5*time.Second), "proclaim"); err != nil || string(li.Value) != "v2" || li.Token != tm.Token() {
		t.Fatalf("Leader() = %+v, %v; want v2 with token %d", li, err, tm.Token())
	}
	if string(tm.Value()) != "v2" {
		t.Fatalf("Value() = %q", tm.Value())
	}
	if err := d.ExpireSession(testCtx(t, 5*time.Second), s.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tm.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("term still live after its lease was revoked")
	}
	if !errors.Is(tm.Err(), coord.ErrLeadershipLost) || !errors.Is(tm.Err(), coord.ErrSessionExpired) {
		t.Fatalf("term Err() = %v, want ErrLeadershipLost and ErrSessionExpired", tm.Err())
	}
	if err := tm.Proclaim(testCtx(t, 5*time.Second), []byte("v3")); !errors.Is(err, coord.ErrNotLeader) {
		t.Fatalf("Proclaim after loss: %v, want ErrNotLeader", err)
	}
	if err := tm.Release(testCtx(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) || !errors.Is(err, coord.ErrLeadershipLost) {
		t.Fatalf("Resign after loss: %v, want ErrNotHeld and ErrLeadershipLost", err)
	}
}

// observed collects what Observe delivers.
type observed struct {
	mu  sync.Mutex
	got []driver.LeaderInfo
	ch  chan struct{}
}

func (o *observed) fn(li driver.LeaderInfo) {
	o.mu.Lock()
	o.got = append(o.got, li)
	o.mu.Unlock()
	select {
	case o.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until the last delivered value is want.
func (o *observed) waitFor(t testing.TB, want driver.LeaderInfo, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		o.mu.Lock()
		var last driver.LeaderInfo
		ok := len(o.got) > 0
		if ok {
			last = o.got[len(o.got)-1]
		}
		o.mu.Unlock()
		if ok && last.Token == want.Token && bytes.Equal(last.Value, want.Value) {
			return
		}
		select {
		case <-o.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("observer's last value %+v (ok=%v), want %+v", last, ok, want)
		}
	}
}

// startObserve runs Observe until the test ends and checks its result.
func startObserve(t *testing.T, d *client, name string, fn func(driver.LeaderInfo)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Observe(ctx, name, fn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Observe returned %v, want context.Canceled", err)
		}
	})
}

// TestObserveSequence checks that Observe delivers no leader, then the
// leader, a proclaimed value, the successor and no leader again.
func TestObserveSequence(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	o := &observed{ch: make(chan struct{}, 1)}
	startObserve(t, d, "obs", o.fn)
	o.waitFor(t, driver.LeaderInfo{}, 5*time.Second)

	s := newSession(t, c, 10*time.Second)
	t1, err := d.Campaign(testCtx(t, 5*time.Second), s.Driver(), "obs", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, driver.LeaderInfo{Token: t1.Token(), Value: []byte("a")}, 5*time.Second)
	if err := t1.Proclaim(testCtx(t, 5*time.Second), []byte("a2")); err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, driver.LeaderInfo{Token: t1.Token(), Value: []byte("a2")}, 5*time.Second)
	won := make(chan driver.Term, 1)
	go func() {
		t2, err := d.Campaign(testCtx(t, 10*time.Second), newSession(t, c, 10*time.Second).Driver(), "obs", []byte("b"))
		if err != nil {
			t.Error(err)
		}
		won <- t2
	}()
	waitRecipe(t, c, "election", "obs", 2)
	if err := t1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	t2 := <-won
	o.waitFor(t, driver.LeaderInfo{Token: t2.Token(), Value: []byte("b")}, 5*time.Second)
	if err := t2.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, driver.LeaderInfo{}, 5*time.Second)
	o.mu.Lock()
	defer o.mu.Unlock()
	var last uint64
	for _, li := range o.got {
		if li.Token != 0 && li.Token < last {
			t.Fatalf("observer went back from term %d to %d: %+v", last, li.Token, o.got)
		}
		last = max(last, li.Token)
	}
}

// TestObserveRereadsAfterCompaction blocks the observer in its first
// callback while the leader changes and the history is compacted past the
// revision it will watch from: the watch then fails as compacted, and
// Observe must read again and deliver the current leader.
func TestObserveRereadsAfterCompaction(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second)
	t1, err := d.Campaign(testCtx(t, 5*time.Second), s.Driver(), "compact", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	first, release := make(chan struct{}), make(chan struct{})
	o := &observed{ch: make(chan struct{}, 1)}
	var once sync.Once
	startObserve(t, d, "compact", func(li driver.LeaderInfo) {
		once.Do(func() { close(first); <-release })
		o.fn(li)
	})
	<-first
	if err := t1.Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	t2, err := d.Campaign(testCtx(t, 5*time.Second), s.Driver(), "compact", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.cli.Put(testCtx(t, 5*time.Second), "/unrelated", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.Compact(testCtx(t, 5*time.Second), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	close(release)
	o.waitFor(t, driver.LeaderInfo{Token: t2.Token(), Value: []byte("two")}, 5*time.Second)
}

// TestObserveAndCampaignAcrossServerRestart restarts the server under a
// running observer and a waiting candidate: the observer must recover and
// deliver the leader elected after the restart; with the server stopped for
// longer than the TTL, a waiting Campaign must return the session's error
// rather than hang.
func TestObserveAndCampaignAcrossServerRestart(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	o := &observed{ch: make(chan struct{}, 1)}
	startObserve(t, d, "restart", o.fn)
	o.waitFor(t, driver.LeaderInfo{}, 5*time.Second)

	const ttl = 2 * time.Second
	s1 := newSession(t, c, ttl)
	t1, err := d.Campaign(testCtx(t, 5*time.Second), s1.Driver(), "restart", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, driver.LeaderInfo{Token: t1.Token(), Value: []byte("one")}, 5*time.Second)
	s2 := newSession(t, c, ttl)
	errc := make(chan error, 1)
	go func() {
		_, err := d.Campaign(testCtx(t, time.Minute), s2.Driver(), "restart", []byte("two"))
		errc <- err
	}()
	waitRecipe(t, c, "election", "restart", 2)

	e.Process.Kill()
	select {
	case err := <-errc:
		if !errors.Is(err, coord.ErrSessionExpired) {
			t.Fatalf("waiting Campaign with the server down: %v, want ErrSessionExpired", err)
		}
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("waiting Campaign still blocked with the server down past the TTL")
	}
	e.Restart(t)

	s3 := newSession(t, c, 10*time.Second)
	t3, err := d.Campaign(testCtx(t, 20*time.Second), s3.Driver(), "restart", []byte("three"))
	if err != nil {
		t.Fatalf("campaign after restart: %v", err)
	}
	o.waitFor(t, driver.LeaderInfo{Token: t3.Token(), Value: []byte("three")}, 15*time.Second)
}

// TestProclaimAfterCandidacyDeletedByHand deletes the leader's key by hand:
// Proclaim must fail with ErrNotLeader and end the term as lost.
func TestProclaimAfterCandidacyDeletedByHand(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	tm, err := d.Campaign(testCtx(t, 5*time.Second), newSession(t, c, 10*time.Second).Driver(), "hand", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.Delete(testCtx(t, 5*time.Second), d.electionPrefix("hand"), clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := tm.Proclaim(testCtx(t, 5*time.Second), []byte("w")); !errors.Is(err, coord.ErrNotLeader) {
		t.Fatalf("Proclaim after the key was deleted: %v, want ErrNotLeader", err)
	}
	select {
	case <-tm.Done():
	default:
		t.Fatal("term still live after Proclaim found its key gone")
	}
	if !errors.Is(tm.Err(), coord.ErrLeadershipLost) || errors.Is(tm.Err(), coord.ErrSessionExpired) {
		t.Fatalf("term Err() = %v, want ErrLeadershipLost without ErrSessionExpired", tm.Err())
	}
}
