package rediscoord_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/lock"
	"github.com/redis/go-redis/v9"
)

func TestWaitersAreServedInFIFOOrder(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("fifo"))
	const n = 6
	g := mustLock(t, newMutex(t, newSession(t, c, 10*time.Second), "l"))
	order := make(chan int, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		m := newMutex(t, newSession(t, c, 10*time.Second), "l")
		go func() {
			g, err := m.Lock(ctxFor(t, 30*time.Second))
			if err != nil {
				errs <- err
				return
			}
			order <- i
			errs <- g.Unlock(ctxFor(t, 5*time.Second))
		}()
		waitContenders(t, c, "l", i+2) // waiter i is queued before i+1 starts
	}
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("waiter: %v", err)
		}
		if got := <-order; got != i {
			t.Fatalf("acquisition %d went to waiter %d, want FIFO order", i, got)
		}
	}
	waitContenders(t, c, "l", 0)
}

// scriptCalls returns how many scripts and BLPOPs the server has run.
func scriptCalls(t testing.TB, raw *redis.Client) (scripts, blpops int) {
	t.Helper()
	info := raw.Info(ctxFor(t, 5*time.Second), "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		k, _ := strconv.Atoi(v)
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			scripts += k
		case "cmdstat_blpop":
			blpops += k
		}
	}
	return scripts, blpops
}

// A release wakes only the next waiter: with five waiters queued, one
// hand-over costs the release script and one acquisition, however many wait.
func TestReleaseWakesOnlyTheNextWaiter(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("herd"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second // no renewal or safety re-check in the window
	hm := newMutex(t, newSession(t, c, ttl), "l")
	// Warm up: the first run of each script is an EVALSHA miss plus an EVAL.
	if err := mustLock(t, hm).Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	g := mustLock(t, hm)
	const n = 5
	results := make([]<-chan result, n)
	for i := range results {
		results[i] = lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
		waitContenders(t, c, "l", i+2)
	}
	time.Sleep(100 * time.Millisecond) // every waiter is blocked in BLPOP
	scripts0, blpops0 := scriptCalls(t, raw)
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	var first result
	select {
	case first = <-results[0]:
		if first.err != nil {
			t.Fatal(first.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first waiter not woken by the release")
	}
	time.Sleep(200 * time.Millisecond)
	scripts1, blpops1 := scriptCalls(t, raw)
	if d := scripts1 - scripts0; d != 2 {
		t.Fatalf("one hand-over ran %d scripts, want 2 (release + the next waiter's acquire)", d)
	}
	if d := blpops1 - blpops0; d != 0 {
		t.Fatalf("%d waiters went back to BLPOP after one release, want none (no stampede)", d)
	}
	for i := 1; i < n; i++ {
		select {
		case r := <-results[i]:
			t.Fatalf("waiter %d returned while the lock is held: %v", i, r.err)
		default:
		}
	}
	if got := contenders(t, c, "l"); got != n {
		t.Fatalf("%d contenders, want %d (the new holder + %d waiters)", got, n, n-1)
	}
	_ = first.g.Unlock(ctxFor(t, 5*time.Second))
	for i := 1; i < n; i++ {
		r := <-results[i]
		if r.err != nil {
			t.Fatal(r.err)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	}
}

func TestReleaseOfAStolenLockIsNotHeld(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("steal"))
	raw := rawClient(t, srv.Addr)
	ctx := ctxFor(t, 10*time.Second)
	g := mustLock(t, newMutex(t, newSession(t, c, 10*time.Second), "l"))
	if err := raw.Set(ctx, "steal:lock:{l}", "intruder", redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	err := g.Unlock(ctx)
	expectErr(t, err, lock.ErrNotHeld)
	expectErr(t, g.Err(), lock.ErrLockLost)
	if v := raw.Get(ctx, "steal:lock:{l}").Val(); v != "intruder" {
		t.Fatalf("release deleted a lock it did not own (value now %q)", v)
	}
	if err := g.Unlock(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("second Unlock: err = %v, want ErrNotHeld", err)
	}
}

func TestHeartbeatReportsADeletedLock(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("del"))
	raw := rawClient(t, srv.Addr)
	const ttl = 600 * time.Millisecond
	s := newSession(t, c, ttl)
	g := mustLock(t, newMutex(t, s, "l"))
	if err := raw.Del(ctxFor(t, time.Second), "del:lock:{l}").Err(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, g.Done(), ttl, "Done of a lock whose key was deleted")
	expectErr(t, g.Err(), lock.ErrLockLost)
	if err := s.Err(); err != nil {
		t.Fatalf("session ended too: %v", err)
	}
}

// A waiter whose session died without cleaning up must not block the line:
// the release skips it and wakes the next live waiter at once.
func TestDeadWaiterIsSkipped(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("dead"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second
	g := mustLock(t, newMutex(t, newSession(t, c, ttl), "l"))
	// An entry of a session whose key does not exist (expired on the server).
	if err := raw.RPush(ctxFor(t, time.Second), "dead:lock:{l}:waiters", "00ff00ff:0123abcd").Err(); err != nil {
		t.Fatal(err)
	}
	waiting := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 3)
	released := time.Now()
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if d := r.at.Sub(released); d > time.Second {
			t.Fatalf("live waiter acquired %s after the release, want at once", d)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	case <-time.After(5 * time.Second):
		t.Fatal("dead waiter at the head blocked the line")
	}
	waitContenders(t, c, "l", 0)
}

// A cancelled waiter leaves the line (and leaves nothing behind), and the
// waiters behind it still get the lock on the next release.
func TestCancelledWaiterLeavesTheLine(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("cancel"))
	raw := rawClient(t, srv.Addr)
	const ttl = 30 * time.Second
	g := mustLock(t, newMutex(t, newSession(t, c, ttl), "l"))
	actx, cancel := context.WithCancel(context.Background())
	a := lockAsync(actx, newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 2)
	b := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 3)
	cancelled := time.Now()
	cancel()
	select {
	case r := <-a:
		expectErr(t, r.err, context.Canceled)
		if d := r.at.Sub(cancelled); d > time.Second {
			t.Fatalf("cancelled Lock returned %s after cancel, want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Lock did not return")
	}
	waitContenders(t, c, "l", 2)
	if keys := raw.Keys(ctxFor(t, time.Second), "cancel:lock:{l}:wake:*").Val(); len(keys) != 0 {
		t.Fatalf("wake-up lists left behind: %v", keys)
	}
	released := time.Now()
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-b:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if d := r.at.Sub(released); d > time.Second {
			t.Fatalf("waiter behind the cancelled one acquired %s after the release", d)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	case <-time.After(5 * time.Second):
		t.Fatal("waiter behind a cancelled waiter never acquired")
	}
	waitContenders(t, c, "l", 0)
}

// A waiter woken by a release that gives up before taking the lock passes the
// turn on: the next waiter acquires at once, not after a TTL.
func TestWokenWaiterThatGivesUpPassesTheTurn(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL, coord.WithNamespace("pass"))
	raw := rawClient(t, srv.Addr)
	ctx := ctxFor(t, 10*time.Second)
	const ttl = 30 * time.Second
	// Queue a live waiter entry by hand that nobody serves (its Lock call is
	// gone, as if it had consumed its wake-up and then been cancelled), then
	// end it the way a cancelled Lock does: through its session's Close.
	ghost := newSession(t, c, ttl)
	g := mustLock(t, newMutex(t, newSession(t, c, ttl), "l"))
	gctx, gcancel := context.WithCancel(context.Background())
	ghostWait := lockAsync(gctx, newMutex(t, ghost, "l"))
	waitContenders(t, c, "l", 2)
	b := lockAsync(ctxFor(t, 20*time.Second), newMutex(t, newSession(t, c, ttl), "l"))
	waitContenders(t, c, "l", 3)
	// Release with the holder's key deleted by hand so no wake-up is sent;
	// then the ghost gives up: its cancel script must wake b.
	if err := raw.Del(ctx, "pass:lock:{l}").Err(); err != nil {
		t.Fatal(err)
	}
	gcancel()
	if r := <-ghostWait; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("ghost: err = %v, want context.Canceled", r.err)
	}
	gaveUp := time.Now()
	select {
	case r := <-b:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if d := r.at.Sub(gaveUp); d > time.Second {
			t.Fatalf("next waiter acquired %s after the head gave up, want at once", d)
		}
		_ = r.g.Unlock(ctxFor(t, 5*time.Second))
	case <-time.After(5 * time.Second):
		t.Fatal("the turn was not passed on")
	}
	_ = g.Unlock(ctx)
}

func TestLockOnAForeignSessionFails(t *testing.T) {
	srv := local.StartRedis(t)
	c1 := openURL(t, srv.URL, coord.WithNamespace("x"))
	c2 := openURL(t, srv.URL, coord.WithNamespace("x"))
	s2 := newSession(t, c2, 5*time.Second)
	l := c1.Driver().(driver.Locker)
	if _, err := l.Lock(ctxFor(t, 5*time.Second), s2.Driver(), "l", driver.LockOptions{}); err == nil {
		t.Fatal("Lock accepted a session of another client")
	}
}
