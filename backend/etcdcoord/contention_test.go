package etcdcoord

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/coordkit/coord/recipes/lock"
)

// handoffs runs workers that each lock and unlock in a loop for d and returns
// the number of acquisitions and the median wait for the lock.
func handoffs(t *testing.T, workers int, d time.Duration, newLocker func(i int) (lockFn func(ctx context.Context) (unlock func() error, err error))) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu    sync.Mutex
		waits []time.Duration
		wg    sync.WaitGroup
	)
	for i := 0; i < workers; i++ {
		lockFn := newLocker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				unlock, err := lockFn(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("lock: %v", err)
					}
					return
				}
				w := time.Since(start)
				if err := unlock(); err != nil {
					t.Errorf("unlock: %v", err)
					return
				}
				mu.Lock()
				waits = append(waits, w)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(waits) == 0 {
		return 0, 0
	}
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	return len(waits), waits[len(waits)/2]
}

// TestContendedFasterThanConcurrencyMutex measures lock handoffs under
// contention (4 clients) for coord's etcd lock and etcd's own
// concurrency.Mutex on the same server. etcd's waiters watch their
// predecessor from an old revision and sit in the server's 100ms catch-up
// loop; ours open the watch first (synced at once), so they must be several
// times faster.
func TestContendedFasterThanConcurrencyMutex(t *testing.T) {
	e := startEtcd(t)
	const workers, d = 4, 2 * time.Second

	ours, oursP50 := handoffs(t, workers, d, func(int) func(context.Context) (func() error, error) {
		c := openClient(t, e.URL)
		m, _ := lock.NewMutex(newSession(t, c, 10*time.Second), "contended")
		return func(ctx context.Context) (func() error, error) {
			g, err := m.Lock(ctx)
			if err != nil {
				return nil, err
			}
			return func() error { return g.Unlock(context.Background()) }, nil
		}
	})

	theirs, theirsP50 := handoffs(t, workers, d, func(int) func(context.Context) (func() error, error) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		m := concurrency.NewMutex(s, "/etcd-mutex/contended")
		return func(ctx context.Context) (func() error, error) {
			if err := m.Lock(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
					// Lock leaves its key behind on cancel; drop it.
					_ = m.Unlock(context.Background())
				}
				return nil, err
			}
			return func() error { return m.Unlock(context.Background()) }, nil
		}
	})

	t.Logf("%d clients, %v each: coord etcd lock %d handoffs (%.0f/s, wait p50 %v); concurrency.Mutex %d (%.0f/s, wait p50 %v)",
		workers, d, ours, float64(ours)/d.Seconds(), oursP50.Round(time.Microsecond),
		theirs, float64(theirs)/d.Seconds(), theirsP50.Round(time.Microsecond))
	if ours < 3*theirs || ours < 20 {
		t.Fatalf("coord's lock made %d handoffs, concurrency.Mutex %d: want at least 3× as many", ours, theirs)
	}
}
