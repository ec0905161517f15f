package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/barrier"
)

func TestBarrierOnServer(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)

	t.Run("HoldReleaseWait", func(t *testing.T) {
		sa, sb := newSession(t, c), newSession(t, c)
		ba, _ := barrier.New(sa, "b")
		bb, _ := barrier.New(sb, "b")
		if err := bb.Wait(ctxT(t, time.Second)); err != nil {
			t.Fatalf("Wait on a barrier never held = %v", err)
		}
		if err := ba.Hold(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, b := range []*barrier.Barrier{ba, bb} {
			if err := b.Hold(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrExists) {
				t.Fatalf("Hold of a held barrier = %v, want ErrExists", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := bb.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait on a held barrier = %v", err)
		}
		waited := make(chan error, 1)
		go func() { waited <- bb.Wait(ctxT(t, 10*time.Second)) }()
		notYet(t, waited, 50*time.Millisecond, "Wait")
		if err := bb.Release(ctxT(t, 5*time.Second)); err != nil { // anyone may release
			t.Fatal(err)
		}
		if err := recv(t, waited, 5*time.Second, "Wait after Release"); err != nil {
			t.Fatal(err)
		}
		if err := ba.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("Release of a lowered barrier = %v", err)
		}
		// The holder's session closing lowers it at once.
		if err := bb.Hold(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		go func() { waited <- ba.Wait(ctxT(t, 10*time.Second)) }()
		notYet(t, waited, 50*time.Millisecond, "Wait")
		if err := sb.Close(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, waited, testTTL/2, "Wait after the holder's session closed"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NestedNamesDoNotCollide", func(t *testing.T) {
		s := newSession(t, c)
		outer, _ := barrier.New(s, "n")
		if err := outer.Hold(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		inner, _ := barrier.NewDouble(s, "n/hold", 1)
		if err := inner.Enter(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("double barrier under a held barrier's name: %v", err)
		}
		if err := inner.Leave(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, c, "barrier", "n"); n != 0 {
			t.Fatalf("%d participants counted for the held barrier", n)
		}
		_ = outer.Release(ctxT(t, 5*time.Second))
	})

	t.Run("DoubleBarrierRoundsAndCleanup", func(t *testing.T) {
		const n = 3
		name := "double"
		for round := range 2 { // the name is reusable once everyone left
			doubles := make([]*barrier.DoubleBarrier, n)
			entered := make(chan int, n)
			for i := range doubles {
				d, err := barrier.NewDouble(newSession(t, c), name, n)
				if err != nil {
					t.Fatal(err)
				}
				doubles[i] = d
				if i < n-1 {
					go func() {
						if err := d.Enter(ctxT(t, 10*time.Second)); err != nil {
							t.Error(err)
						}
						entered <- i
					}()
					waitCount(t, c, "barrier", name, i+1)
				}
			}
			notYet(t, entered, 100*time.Millisecond, "Enter with fewer than n")
			// A participant that gives up leaves no entry behind.
			quitter, _ := barrier.NewDouble(newSession(t, c), name, n+1)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			if err := quitter.Enter(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("round %d: cancelled Enter = %v", round, err)
			}
			cancel()
			if got := count(t, c, "barrier", name); got != n-1 {
				t.Fatalf("round %d: %d participants after a cancelled Enter, want %d", round, got, n-1)
			}
			if err := doubles[n-1].Enter(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			for range n - 1 {
				recv(t, entered, 5*time.Second, "Enter once n are in")
			}
			// A late participant joins the round under way at once.
			late, _ := barrier.NewDouble(newSession(t, c), name, n)
			if err := late.Enter(ctxT(t, time.Second)); err != nil {
				t.Fatalf("late Enter = %v", err)
			}
			all := append(doubles, late)
			left := make(chan int, len(all))
			for i, d := range all[:len(all)-1] {
				go func() {
					if err := d.Leave(ctxT(t, 10*time.Second)); err != nil {
						t.Error(err)
					}
					left <- i
				}()
			}
			notYet(t, left, 100*time.Millisecond, "Leave while one is in")
			if err := late.Leave(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			for range len(all) - 1 {
				recv(t, left, 5*time.Second, "Leave once all left")
			}
			if ok, _, err := rawConn(t, srv.Addr).Exists("/coord/barrier/" + name + "/" + barrierReady); err != nil || ok {
				t.Fatalf("round %d: ready marker still there (%v)", round, err)
			}
		}
	})
}
