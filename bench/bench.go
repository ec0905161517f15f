// Package bench measures coord's recipes against the peer libraries users
// would otherwise reach for, on the same real servers in the same run:
//
//	go test -run '^$' -bench . -benchtime 2s ./bench
//
// Every benchmark reports ns/op (one lock+unlock cycle, or one handoff under
// contention) and the p50/p99 of the time Lock waited; when the run ends,
// TestMain prints a Markdown table with coord/peer ratios. Servers are local
// processes on loopback (see package conformance/local).
package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Locker is one client of a lock implementation (its own connection and
// session): Lock blocks until held and returns the unlock function.
type Locker interface {
	Lock(ctx context.Context) (unlock func(context.Context) error, err error)
	Close() error
}

// Result is one measured benchmark.
type Result struct {
	Backend, Case, Impl string
	NsPerOp             float64
	P50, P99            time.Duration
	Note                string
}

// Recorder collects results for the summary table.
type Recorder struct {
	mu      sync.Mutex
	results map[string]Result // key backend/case/impl; the last (largest b.N) run wins
	order   []string
}

// Record stores r, replacing an earlier run of the same benchmark.
func (rc *Recorder) Record(r Result) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.results == nil {
		rc.results = map[string]Result{}
	}
	k := r.Backend + "/" + r.Case + "/" + r.Impl
	if _, ok := rc.results[k]; !ok {
		rc.order = append(rc.order, k)
	}
	rc.results[k] = r
}

// Table writes the results as Markdown, one row per backend, case and
// implementation, with the ratio of coord's ns/op to each peer's.
func (rc *Recorder) Table(w io.Writer) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.results) == 0 {
		return
	}
	fmt.Fprintln(w, "| backend | case | implementation | per op | p50 | p99 | coord ÷ peer |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, k := range rc.order {
		r := rc.results[k]
		ratio := ""
		if r.Impl != "coord" {
			if c, ok := rc.results[r.Backend+"/"+r.Case+"/coord"]; ok && r.NsPerOp > 0 {
				ratio = fmt.Sprintf("%.2f×", c.NsPerOp/r.NsPerOp)
			}
		}
		impl := r.Impl
		if r.Note != "" {
			impl += " (" + r.Note + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Backend, r.Case, impl,
			fmtDur(time.Duration(r.NsPerOp)), fmtDur(r.P50), fmtDur(r.P99), ratio)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// Percentile returns the p-th percentile (0–100) of ds, which it sorts.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// Cycles runs n lock+unlock cycles spread over the lockers (one goroutine
// each, taking cycles from a shared counter) and returns every Lock wait.
func Cycles(ctx context.Context, lockers []Locker, n int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		waits = make([]time.Duration, 0, n)
		left  = n
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []string
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			return false
		}
		left--
		return true
	}
	for _, l := range lockers {
		wg.Add(1)
		go func(l Locker) {
			defer wg.Done()
			for take() {
				start := time.Now()
				unlock, err := l.Lock(ctx)
				if err != nil {
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
					return
				}
				w := time.Since(start)
				mu.Lock()
				waits = append(waits, w)
				mu.Unlock()
				if err := unlock(ctx); err != nil {
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
					return
				}
			}
		}(l)
	}
	wg.Wait()
	if len(errs) > 0 {
		return waits, fmt.Errorf("%d lock errors, first: %s", len(errs), strings.Join(errs[:1], ""))
	}
	return waits, nil
}
