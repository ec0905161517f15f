package etcdcoord

import (
	"bytes"
	"errors"
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
