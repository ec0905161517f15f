package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coord"
)

// TestBarrierHoldWaitRelease checks ErrExists on a second Hold, that Wait
// blocks while the barrier is up and returns on Release, that Wait returns
// at once on a barrier that is down, and that a session's end lowers it.
func TestBarrierHoldWaitRelease(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	d := driverOf(t, c)
	s := newSession(t, c, 10*time.Second)
	if err := d.WaitBarrier(testCtx(t, 5*time.Second), "b"); err != nil {
		t.Fatalf("wait on a barrier never raised: %v", err)
	}
	if err := d.HoldBarrier(testCtx(t, 5*time.Second), s.Driver(), "b"); err != nil {
		t.Fatal(err)
	}
	if err := d.HoldBarrier(testCtx(t, 5*time.Second), s.Driver(), "b"); !errors.Is(err, coord.ErrExists) {
		t.Fatalf("second hold: %v, want ErrExists", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- driverOf(t, c).WaitBarrier(testCtx(t, 30*time.Second), "b") }()
	expectNone(t, waited, 300*time.Millisecond, "Wait returned while the barrier is up")
	if err := d.ReleaseBarrier(testCtx(t, 5*time.Second), "b"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after Release")
	}
	if err := d.ReleaseBarrier(testCtx(t, 5*time.Second), "b"); err != nil {
		t.Fatalf("release of a barrier that is down: %v", err)
	}

	s2 := newSession(t, c, 10*time.Second)
	if err := d.HoldBarrier(testCtx(t, 5*time.Second), s2.Driver(), "b"); err != nil {
		t.Fatal(err)
	}
	go func() { waited <- d.WaitBarrier(testCtx(t, 30*time.Second), "b") }()
	expectNone(t, waited, 200*time.Millisecond, "Wait returned while the barrier is up")
	if err := s2.Close(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after the holder's session closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	if err := d.HoldBarrier(testCtx(t, 5*time.Second), s.Driver(), "b"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitBarrier(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with an expired ctx: %v, want DeadlineExceeded", err)
	}
}

// TestDoubleBarrierRoundsAndCancel runs two rounds of a 3-participant
// double barrier on one name (the ready marker of the first round must not
// let the second through early), and checks that a cancelled Enter removes
// its participant and does not count.
func TestDoubleBarrierRoundsAndCancel(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL)
	const n = 3
	clients := make([]*client, n)
	sessions := make([]*coord.Session, n)
	for i := range clients {
		ci := openClient(t, e.URL)
		clients[i], sessions[i] = driverOf(t, ci), newSession(t, ci, 10*time.Second)
	}
	// A participant that gives up while waiting leaves nothing behind.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- clients[0].EnterDoubleBarrier(ctx, sessions[0].Driver(), "db", n, "quitter") }()
	waitRecipe(t, c, "barrier", "db", 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Enter: %v, want context.Canceled", err)
	}
	waitRecipe(t, c, "barrier", "db", 0)

	for round := 0; round < 2; round++ {
		entered := make(chan int, n)
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("p%d", i)
			go func() {
				if err := clients[i].EnterDoubleBarrier(testCtx(t, 30*time.Second), sessions[i].Driver(), "db", n, id); err != nil {
					t.Errorf("round %d: enter %s: %v", round, id, err)
				}
				entered <- i
			}()
			if i < n-1 {
				waitRecipe(t, c, "barrier", "db", i+1)
				expectNone(t, entered, 100*time.Millisecond, fmt.Sprintf("round %d: entered with %d of %d", round, i+1, n))
			}
		}
		for i := 0; i < n; i++ {
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: only %d entered", round, i)
			}
		}
		left := make(chan int, n)
		for i := 0; i < n-1; i++ {
			go func() {
				if err := clients[i].LeaveDoubleBarrier(testCtx(t, 30*time.Second), sessions[i].Driver(), "db", fmt.Sprintf("p%d", i)); err != nil {
					t.Errorf("round %d: leave p%d: %v", round, i, err)
				}
				left <- i
			}()
		}
		waitRecipe(t, c, "barrier", "db", 1)
		expectNone(t, left, 200*time.Millisecond, fmt.Sprintf("round %d: left before the last one", round))
		if err := clients[n-1].LeaveDoubleBarrier(testCtx(t, 30*time.Second), sessions[n-1].Driver(), "db", fmt.Sprintf("p%d", n-1)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n-1; i++ {
			select {
			case <-left:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: only %d left", round, i)
			}
		}
		resp, err := clients[0].cli.Get(testCtx(t, 5*time.Second), clients[0].doubleBarrierPrefix("db")+"ready")
		if err != nil || len(resp.Kvs) != 0 {
			t.Fatalf("round %d: ready marker after everyone left: %v, %v", round, resp.Kvs, err)
		}
	}
}
