package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/internal/devetcd"
	"github.com/coordkit/coord/recipes/lock"
)

const (
	demoWorkers = 4
	demoRounds  = 3
	demoHold    = 40 * time.Millisecond
	demoTTL     = 2 * time.Second
	demoLock    = "demo"
	// demoLoser is the worker whose session is expired on the server while it
	// holds the lock, in its first round, as if its process had frozen.
	demoLoser = 4
)

func demoCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "show the lock at work on an embedded etcd: contention, fencing tokens, loss detection",
		ArgsUsage: " ",
		Description: fmt.Sprintf("Starts an embedded etcd on a free loopback port, runs %d workers (each with its own session)\n"+
			"that take the lock %q %d times each, expires one worker's session while it holds the lock, and\n"+
			"checks that holdings never overlapped, tokens strictly increased, the loss was detected and the\n"+
			"lost holder's stale write was rejected by its fencing token. Exits 0 when every check holds.",
			demoWorkers, demoLock, demoRounds),
		Action: func(c *cli.Context) error {
			g, err := st.globals(c)
			if err != nil {
				return err
			}
			if c.Args().Present() {
				return usage("run 'coordctl demo --help'", "demo takes no arguments, got %q", c.Args().First())
			}
			ctx, cancel := context.WithTimeout(c.Context, 60*time.Second)
			defer cancel()
			return runDemo(ctx, g.out(st))
		},
	}
}

// resource stands for what a lock protects: it accepts a write only with a
// token greater than every token it has seen (fencing).
type resource struct {
	mu      sync.Mutex
	last    uint64
	holders int // holders currently inside, to catch overlap
	maxIn   int
	writes  int
}

func (r *resource) enter() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holders++
	r.maxIn = max(r.maxIn, r.holders)
}

func (r *resource) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holders--
}

func (r *resource) write(token uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token <= r.last {
		return fmt.Errorf("token %d rejected: already saw %d", token, r.last)
	}
	r.last = token
	r.writes++
	return nil
}

func (r *resource) lastToken() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// timeline prints demo events with their offset from the start.
type timeline struct {
	p     *printer
	start time.Time
}

func (t *timeline) log(worker int, ev string, token uint64, detail string) {
	off := time.Since(t.start)
	who := "demo    "
	if worker > 0 {
		who = fmt.Sprintf("worker-%d", worker)
	}
	text := fmt.Sprintf("%+8.3fs  %s  %-11s", off.Seconds(), who, ev)
	if token != 0 {
		text += fmt.Sprintf(" token %-4d", token)
	}
	if detail != "" {
		text += "  " + detail
	}
	t.p.emit(strings.TrimRight(text, " "), struct {
		T      float64 `json:"t"`
		Worker int     `json:"worker"`
		Event  string  `json:"event"`
		Token  uint64  `json:"token,omitempty"`
		Detail string  `json:"detail,omitempty"`
	}{off.Seconds(), worker, ev, token, detail})
}

// demoResult collects what the workers saw.
type demoResult struct {
	mu           sync.Mutex
	holdings     int
	lossDetected time.Duration
	lossErr      error
	staleErr     error
	errs         []error
}

func (d *demoResult) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, err)
}

func runDemo(ctx context.Context, out *printer) error {
	tl := &timeline{p: out, start: time.Now()}
	srv, err := devetcd.Start(ctx, devetcd.Config{Listen: "127.0.0.1:0", UnsafeNoFsync: true})
	if err != nil {
		return fail(err, "", "demo: cannot start the embedded etcd")
	}
	defer srv.Close()
	tl.log(0, "etcd ready", 0, srv.URL())

	client, err := coord.Open(ctx, srv.URL(), coord.WithNamespace("demo"), coord.WithTTL(demoTTL))
	if err != nil {
		return fail(err, "", "demo: cannot connect to the embedded etcd")
	}
	defer client.Close()

	res := &resource{}
	out2 := &demoResult{}
	var wg sync.WaitGroup
	for w := 1; w <= demoWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := demoWorker(ctx, client, w, tl, res, out2); err != nil {
				out2.fail(fmt.Errorf("worker-%d: %w", w, err))
			}
		}()
	}
	wg.Wait()
	return demoVerdict(tl, res, out2)
}

func demoWorker(ctx context.Context, client *coord.Client, w int, tl *timeline, res *resource, out *demoResult) error {
	sess, err := client.NewSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close(context.WithoutCancel(ctx))
	m, err := lock.NewMutex(sess, demoLock)
	if err != nil {
		return err
	}
	for round := 1; round <= demoRounds; round++ {
		tl.log(w, "waiting", 0, "")
		g, err := m.Lock(ctx)
		if err != nil {
			return err
		}
		token := uint64(g.Token())
		res.enter()
		tl.log(w, "acquired", token, "")
		out.mu.Lock()
		out.holdings++
		out.mu.Unlock()
		if err := res.write(token); err != nil {
			res.leave()
			return fmt.Errorf("write as holder: %w", err)
		}
		if w == demoLoser && round == 1 {
			return demoLose(ctx, sess, g, tl, res, out, w)
		}
		time.Sleep(demoHold)
		res.leave()
		tl.log(w, "releasing", token, "")
		if err := g.Unlock(ctx); err != nil {
			return err
		}
	}
	return nil
}

// demoLose expires the worker's session on the server while it holds the
// lock (its process "froze"), shows that Guard.Done reports the loss, and that
// a write with its stale token is rejected once the next holder has written.
func demoLose(ctx context.Context, sess *coord.Session, g *lock.Guard, tl *timeline, res *resource, out *demoResult, w int) error {
	token := uint64(g.Token())
	res.leave() // from here on it must not count as a holder
	tl.log(w, "frozen", token, "its session is expired on the server while it holds the lock")
	start := time.Now()
	if e, ok := sess.Client().Driver().(driver.Expirer); ok {
		if err := e.ExpireSession(ctx, sess.ID()); err != nil {
			return err
		}
	} else if err := sess.Close(ctx); err != nil {
		return err
	}
	select {
	case <-g.Done():
	case <-ctx.Done():
		return fmt.Errorf("loss never detected: %w", ctx.Err())
	}
	out.mu.Lock()
	out.lossDetected, out.lossErr = time.Since(start), g.Err()
	out.mu.Unlock()
	tl.log(w, "lost", token, fmt.Sprintf("detected after %s: %v", time.Since(start).Round(time.Millisecond), g.Err()))

	// The frozen process wakes up and tries to use the resource anyway.
	for res.lastToken() <= token {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := res.write(token)
	out.mu.Lock()
	out.staleErr = err
	out.mu.Unlock()
	if err == nil {
		return errors.New("stale write with a lost token was accepted")
	}
	tl.log(w, "stale write", token, "rejected by the resource: "+err.Error())
	return nil
}

func demoVerdict(tl *timeline, res *resource, d *demoResult) error {
	want := (demoWorkers-1)*demoRounds + 1
	var problems []string
	for _, e := range d.errs {
		problems = append(problems, e.Error())
	}
	if res.maxIn > 1 {
		problems = append(problems, fmt.Sprintf("%d holders at once", res.maxIn))
	}
	if d.holdings != want || res.writes != want {
		problems = append(problems, fmt.Sprintf("%d holdings and %d accepted writes, want %d", d.holdings, res.writes, want))
	}
	if !errors.Is(d.lossErr, coord.ErrLockLost) {
		problems = append(problems, fmt.Sprintf("loss not reported as ErrLockLost: %v", d.lossErr))
	}
	if d.staleErr == nil {
		problems = append(problems, "the stale write was not rejected")
	}
	if len(problems) > 0 {
		tl.log(0, "FAILED", 0, fmt.Sprint(problems))
		return withCode(exitError, nil, "", "demo: checks failed: %v", problems)
	}
	tl.log(0, "ok", 0, fmt.Sprintf("%d holdings, never two at once, tokens strictly increasing up to %d, "+
		"loss detected in %s, stale write rejected", d.holdings, res.last, d.lossDetected.Round(time.Millisecond)))
	return nil
}
