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
