package zkcoord

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/election"
)

// An observer cut off from the server catches up once it is back, both when
// go-zookeeper restores its watches (a short partition) and when its
// connection's session expired meanwhile and the watches were dropped.
func TestObserveCatchesUpAfterPartition(t *testing.T) {
	srv := local.StartZooKeeper(t)
	near := openClient(t, srv.URL)
	for _, tc := range []struct {
		name  string
		block time.Duration
	}{
		{"WatchesRestored", testTTL / 4},
		{"SessionExpired", testTTL + 2*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := local.NewProxy(t, srv.Addr)
			far := openClient(t, "zk://"+proxy.Addr())
			name := "partition/" + tc.name
			var mu sync.Mutex
			var last driver.LeaderInfo
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- far.Driver().(driver.Elector).Observe(ctx, name, func(li driver.LeaderInfo) {
					mu.Lock()
					last = li
					mu.Unlock()
				})
			}()
			defer func() {
				cancel()
				if err := recv(t, done, 5*time.Second, "Observe after cancel"); !errors.Is(err, context.Canceled) {
					t.Errorf("Observe = %v, want Canceled", err)
				}
			}()
			current := func() driver.LeaderInfo {
				mu.Lock()
				defer mu.Unlock()
				return last
			}
			t1, err := elect(t, newSession(t, near), name).Campaign(ctxT(t, 5*time.Second), []byte("one"))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "first leader", func() bool { return current().Token == uint64(t1.Token()) })

			proxy.Block()
			s2 := newSession(t, near)
			won := make(chan *election.Term, 1)
			go func() {
				t2, err := elect(t, s2, name).Campaign(ctxT(t, 10*time.Second), []byte("two"))
				if err != nil {
					t.Error(err)
				}
				won <- t2
			}()
			waitCount(t, near, "election", name, 2)
			if err := t1.Resign(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			t2 := recv(t, won, 5*time.Second, "second leader")
			if err := t2.Proclaim(ctxT(t, 5*time.Second), []byte("two, proclaimed")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.block)
			if li := current(); li.Token != uint64(t1.Token()) {
				t.Fatalf("the partitioned observer saw %+v", li)
			}
			proxy.Unblock()
			start := time.Now()
			waitFor(t, 10*time.Second, "the current leader after the partition", func() bool {
				li := current()
				return li.Token == uint64(t2.Token()) && string(li.Value) == "two, proclaimed"
			})
			t.Logf("observer caught up %v after the partition healed", time.Since(start).Round(time.Millisecond))
		})
	}
}

// With the server gone, a waiting Campaign ends with the session's loss
// (client-side deadline) and Observe and Leader return when their context
// ends: nothing hangs.
func TestServerKilledDuringCampaignAndObserve(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	sa, sb := newSession(t, c), newSession(t, c)
	ta, err := elect(t, sa, "k").Campaign(ctxT(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	campaign := make(chan error, 1)
	go func() {
		_, err := elect(t, sb, "k").Campaign(context.Background(), nil)
		campaign <- err
	}()
	waitCount(t, c, "election", "k", 2)
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	observe := make(chan error, 1)
	go func() {
		observe <- c.Driver().(driver.Elector).Observe(octx, "k", func(driver.LeaderInfo) {})
	}()

	srv.Process.Kill()
	err = recv(t, campaign, testTTL+2*time.Second, "Campaign after the server was killed")
	if !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("Campaign = %v, want ErrSessionExpired", err)
	}
	waitDone(t, ta.Done(), time.Second, "term")
	if !errors.Is(ta.Err(), coord.ErrLeadershipLost) || !errors.Is(ta.Err(), coord.ErrSessionExpired) {
		t.Fatalf("term Err = %v", ta.Err())
	}
	start := time.Now()
	_, err = election.LeaderOf(ctxT(t, 300*time.Millisecond), c, "k")
	if !errors.Is(err, coord.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Leader with no server = %v after %v", err, time.Since(start))
	}
	select {
	case err := <-observe:
		t.Fatalf("Observe returned while its context is live: %v", err)
	default:
	}
	ocancel()
	if err := recv(t, observe, 2*time.Second, "Observe after cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Observe = %v, want Canceled", err)
	}
}
