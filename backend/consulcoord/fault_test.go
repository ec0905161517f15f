package consulcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/election"
)

// TestAgentKilledRecipes: when the agent dies, a leader's term reports the
// loss, a waiting Campaign and a waiting semaphore Acquire return the
// session's loss within its TTL, and an observer keeps retrying without
// hanging: it stops as soon as its ctx is cancelled.
func TestAgentKilledRecipes(t *testing.T) {
	a := local.StartConsul(t)
	c := openURL(t, a.URL)
	s1, s2 := newSession(t, c), newSession(t, c)
	leader := mustCampaign(t, newElection(t, s1, "k"), "a")
	_, campaignErr := campaignAsync(t, newElection(t, s2, "k"), "b", time.Minute)
	waitRecipe(t, c, "election", "k", 2)
	held, err := semaphore(t, s1, "k", 1).Acquire(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, acquireErr := acquireAsync(t, time.Minute, semaphore(t, s2, "k", 1).Acquire)
	waitRecipe(t, c, "semaphore", "k", 2)
	octx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := election.Observe(octx, c, "k")
	if err != nil {
		t.Fatal(err)
	}
	within(t, o.C(), 5*time.Second, "observer")

	killed := time.Now()
	a.Process.Kill()
	bound := s1.TTL() + 2*time.Second
	closedWithin(t, leader.Done(), bound, "leader's term after the agent was killed")
	if err := leader.Err(); !errors.Is(err, coord.ErrLeadershipLost) || !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("term Err() = %v", err)
	}
	closedWithin(t, held.Done(), time.Second, "semaphore holder")
	for what, errc := range map[string]<-chan error{"Campaign": campaignErr, "Acquire": acquireErr} {
		err := within(t, errc, bound-time.Since(killed)+time.Second, "waiting "+what)
		if !errors.Is(err, coord.ErrSessionExpired) {
			t.Fatalf("waiting %s: %v, want ErrSessionExpired", what, err)
		}
	}
	select {
	case <-o.Done():
		t.Fatalf("observer gave up while the agent was down: %v", o.Err())
	default:
	}
	cancel()
	closedWithin(t, o.Done(), 2*time.Second, "observer after cancel, agent down")
	if !errors.Is(o.Err(), context.Canceled) {
		t.Fatalf("observer Err() = %v", o.Err())
	}
	t.Logf("term lost and waiters released %s after the agent was killed (TTL %s)", time.Since(killed).Round(time.Millisecond), s1.TTL())
}
