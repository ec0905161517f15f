package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/barrier"
)

const (
	barrierUsage = "usage: coordctl barrier hold|release|wait NAME  or  coordctl barrier enter --count N NAME [-- CMD [ARGS...]]"
	enterUsage   = "usage: coordctl barrier enter --count N [--timeout D] [--kill-after D] NAME [-- CMD [ARGS...]]"
)

func barrierCommand(st *state) *cli.Command {
	timeout := &cli.DurationFlag{Name: "timeout", Usage: "give up after waiting `D` (exit 3)", DefaultText: "wait forever"}
	return &cli.Command{
		Name:  "barrier",
		Usage: "barriers: hold one up, wait for it to go down; enter and leave a double barrier",
		Description: "A barrier blocks `barrier wait` until it is released. A raised barrier belongs to the\n" +
			"session of the `barrier hold` process that raised it: it goes down when that process is\n" +
			"stopped (or dies, after the session TTL), or when someone runs `barrier release`.\n" +
			"\n" +
			"A double barrier lets N participants start and finish together; see `barrier enter --help`.",
		Subcommands: []*cli.Command{
			{
				Name:      "hold",
				Usage:     "raise the barrier NAME and keep it up until SIGINT/SIGTERM",
				ArgsUsage: "NAME",
				Description: "Raises the barrier NAME (exit 3 if it is already up), prints `raised barrier name=NAME`\n" +
					"and keeps running: the barrier lives as long as this process's session. On SIGINT or\n" +
					"SIGTERM it lowers the barrier, prints `lowered barrier name=NAME` and exits 0; it also\n" +
					"exits 0 when someone else released the barrier, and 4 if its session was lost (a loss the\n" +
					"session learns of more than half a TTL, at most 2s, after the barrier went down counts as a\n" +
					"release).",
				Action: func(c *cli.Context) error { return st.runBarrierHold(c) },
			},
			{
				Name:        "release",
				Usage:       "lower the barrier NAME, whoever raised it",
				ArgsUsage:   "NAME",
				Description: "Lowers the barrier NAME and wakes every `barrier wait`; exits 0 (also when it was not up).",
				Action:      func(c *cli.Context) error { return st.runBarrierRelease(c) },
			},
			{
				Name:        "wait",
				Usage:       "block until the barrier NAME is down",
				ArgsUsage:   "NAME",
				Description: "Returns (exit 0) once the barrier NAME is down, at once if it is not up; exit 3 when\n--timeout expires or a signal interrupts the wait.",
				Flags:       []cli.Flag{timeout},
				Action:      func(c *cli.Context) error { return st.runBarrierWait(c) },
			},
			{
				Name:      "enter",
				Usage:     "enter the double barrier NAME with N participants, run CMD, then leave together",
				ArgsUsage: "NAME [-- CMD [ARGS...]]",
				Description: "Enters the double barrier NAME and waits until --count N participants have entered\n" +
					"(every participant must give the same N), then runs CMD with COORD_BARRIER_NAME and\n" +
					"COORD_BARRIER_COUNT in its environment. When CMD exits, it leaves the barrier and waits\n" +
					"until every participant has left, then exits with CMD's exit code. Without CMD it prints\n" +
					"`entered barrier name=NAME count=N` once all have entered and leaves at once (a pure\n" +
					"rendezvous), printing `left barrier name=NAME` when all have left.\n" +
					"\n" +
					"A participant belongs to this process's session, so entering and leaving happen in one\n" +
					"`barrier enter` run: there is no separate `barrier leave` (the process's exit would\n" +
					"already have withdrawn its entry). A participant whose process dies stops counting after\n" +
					"the session TTL. Exit 3 when --timeout expires or a signal arrives before all entered\n" +
					"(nothing was run); if the session is lost while CMD runs, CMD gets SIGTERM, then SIGKILL\n" +
					"after --kill-after, and coordctl exits 4.",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "count", Usage: "the number `N` of participants"},
					timeout,
					&cli.DurationFlag{Name: "kill-after", Value: 10 * time.Second, Usage: "after a loss, SIGKILL CMD if it is still running `D` after SIGTERM"},
				},
				Action: func(c *cli.Context) error { return st.runBarrierEnter(c) },
			},
			{
				Name:      "leave",
				Usage:     "(not a separate step: `barrier enter` leaves when its CMD exits)",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					return usage(enterUsage, "barrier leave: a participant leaves in the `barrier enter` run that entered it "+
						"(when its CMD exits), since its entry belongs to that process's session")
				},
			},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usage(barrierUsage, "barrier: unknown subcommand %q", c.Args().First())
			}
			return usage(barrierUsage, "barrier: missing subcommand")
		},
	}
}

// barrierName checks the single NAME argument of a barrier subcommand.
func barrierName(c *cli.Context, sub, usageText string, cmdAllowed bool, st *state) (string, error) {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return "", usage(usageText, "barrier %s: missing NAME", sub)
	case len(args) > 1:
		return "", usage(usageText, "barrier %s: unexpected argument %q after NAME", sub, args[1])
	case st.sawDash && !cmdAllowed:
		return "", usage(usageText, "barrier %s: runs no CMD", sub)
	}
	if err := coord.ValidateName(args[0]); err != nil {
		return "", usage("choose another barrier name", "barrier %s: %v", sub, err)
	}
	return args[0], nil
}

// openBarrier parses NAME, connects with a session and returns the barrier.
func (st *state) openBarrier(c *cli.Context, sub string) (globals, *catcher, *connection, *barrier.Barrier, error) {
	g, err := st.globals(c)
	if err != nil {
		return g, nil, nil, nil, err
	}
	name, err := barrierName(c, sub, barrierUsage, false, st)
	if err != nil {
		return g, nil, nil, nil, err
	}
	k := catchSignals(c.Context)
	cn, err := st.connect(g, k, true, fmt.Sprintf("barrier %s %q not done", sub, name))
	if err != nil {
		k.close()
		return g, nil, nil, nil, err
	}
	b, err := barrier.New(cn.sess, name)
	if err != nil {
		cn.close(g, c.Context)
		k.close()
		return g, nil, nil, nil, fail(err, "", "barrier %s", sub)
	}
	return g, k, cn, b, nil
}

// barrierFailed maps a barrier call's error to an exit code.
func barrierFailed(k *catcher, err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if intr, ok := k.interrupt(); ok {
		return withCode(exitNotAcquired, nil, "", "%s: %s", what, intr.Error())
	}
	if errors.Is(err, coord.ErrUnsupported) {
		return fail(err, "use another backend", "%s", what)
	}
	return fail(err, backendHint, "%s", what)
}

func (st *state) runBarrierHold(c *cli.Context) error {
	g, k, cn, b, err := st.openBarrier(c, "hold")
	if err != nil {
		return err
	}
	defer k.close()
	defer cn.close(g, c.Context)
	name := b.Name()
	if err := b.Hold(k.ctx); err != nil {
		if errors.Is(err, coord.ErrExists) {
			return withCode(exitNotAcquired, nil, "wait for it with `coordctl barrier wait`, or lower it with `coordctl barrier release`",
				"barrier %q is already up", name)
		}
		if _, ok := k.interrupt(); ok {
			// Hold may have raised it as the signal came: closing the
			// session (deferred) lowers it.
			return barrierFailed(k, err, "barrier %q not raised", name)
		}
		return barrierFailed(k, err, "cannot raise barrier %q", name)
	}
	out := g.out(st)
	out.emit("raised barrier name="+name, event{Event: "raised", Barrier: name, Session: cn.sess.ID()})

	// Notice a release by someone else: the barrier is down, nothing to hold.
	wctx, wcancel := context.WithCancel(c.Context)
	downErr := make(chan error, 1)
	go func() { downErr <- b.Wait(wctx) }()
	defer func() { wcancel(); <-downErr }()
	select {
	case <-k.ctx.Done():
		rctx, rcancel := g.cleanupCtx(c.Context)
		defer rcancel()
		if err := b.Release(rctx); err != nil {
			st.warn("lower barrier %q: %v (closing the session lowers it too)", name, err)
		}
		out.emit("lowered barrier name="+name, event{Event: "lowered", Barrier: name})
		return nil
	case <-cn.sess.Done():
		return withCode(exitLost, cn.sess.Err(), "", "barrier %q went down: the session ended", name)
	case err := <-downErr:
		downErr <- err // for the deferred receive
		if err != nil {
			return fail(err, backendHint, "barrier %q: cannot follow it", name)
		}
		// Down without our Release: someone released it, or our session
		// expired on the server and the client has not learnt it yet (the
		// key goes before the next keep-alive tells). Give the session a
		// short grace to report a loss.
		grace := min(cn.sess.TTL()/2, 2*time.Second)
		select {
		case <-cn.sess.Done():
		case <-time.After(grace):
		case <-k.ctx.Done():
		}
		if err := cn.sess.Err(); err != nil {
			return withCode(exitLost, err, "", "barrier %q went down: the session ended", name)
		}
		out.emit("released barrier name="+name+" (by another process)", event{Event: "released", Barrier: name})
		return nil
	}
}

func (st *state) runBarrierRelease(c *cli.Context) error {
	g, k, cn, b, err := st.openBarrier(c, "release")
	if err != nil {
		return err
	}
	defer k.close()
	defer cn.close(g, c.Context)
	if err := b.Release(k.ctx); err != nil {
		return barrierFailed(k, err, "barrier %q not released", b.Name())
	}
	return nil
}

var errTimeout = errors.New("--timeout expired")

func (st *state) runBarrierWait(c *cli.Context) error {
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return usage(barrierUsage, "barrier wait: --timeout %s is negative", timeout)
	}
	g, k, cn, b, err := st.openBarrier(c, "wait")
	if err != nil {
		return err
	}
	defer k.close()
	defer cn.close(g, c.Context)
	ctx := k.ctx
	if c.IsSet("timeout") {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	if err := b.Wait(ctx); err != nil {
		if errors.Is(context.Cause(ctx), errTimeout) {
			return withCode(exitNotAcquired, nil, "", "barrier %q still up after --timeout %s", b.Name(), timeout)
		}
		return barrierFailed(k, err, "barrier %q: wait ended", b.Name())
	}
	return nil
}

func (st *state) runBarrierEnter(c *cli.Context) error {
	g, err := st.globals(c)
	if err != nil {
		return err
	}
	name, err := barrierName(c, "enter", enterUsage, true, st)
	if err != nil {
		return err
	}
	n, timeout, killAfter := c.Int("count"), c.Duration("timeout"), c.Duration("kill-after")
	switch {
	case !c.IsSet("count"):
		return usage(enterUsage, "barrier enter: missing --count N")
	case n < 1:
		return usage(enterUsage, "barrier enter: --count %d, want at least 1", n)
	case timeout < 0:
		return usage(enterUsage, "barrier enter: --timeout %s is negative", timeout)
	case killAfter < 0:
		return usage(enterUsage, "barrier enter: --kill-after %s is negative", killAfter)
	case st.sawDash && len(st.cmd) == 0:
		return usage(enterUsage, "barrier enter: missing CMD after --")
	}
	k := catchSignals(c.Context)
	defer k.close()
	cn, err := st.connect(g, k, true, fmt.Sprintf("barrier %q not entered", name))
	if err != nil {
		return err
	}
	defer cn.close(g, c.Context)
	d, err := barrier.NewDouble(cn.sess, name, n)
	if err != nil {
		return fail(err, "", "barrier enter")
	}
	ev := g.events(st)
	ev.emitEvent(event{Event: "entering", Barrier: name, Count: n, Session: cn.sess.ID()})
	ctx := k.ctx
	if c.IsSet("timeout") {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	err = d.Enter(ctx)
	k.stopWatch()
	if err == nil && context.Cause(k.ctx) != nil {
		// Entered as a signal came: go (closing the session withdraws us).
		err = context.Cause(k.ctx)
	}
	if err != nil {
		ev.emitEvent(event{Event: "not-entered", Barrier: name, Error: err.Error()})
		if errors.Is(context.Cause(ctx), errTimeout) {
			return withCode(exitNotAcquired, nil, "", "barrier %q: fewer than %d participants entered within --timeout %s; nothing was run",
				name, n, timeout)
		}
		return barrierFailed(k, err, "barrier %q not entered", name)
	}
	leaveCtx := func(parent context.Context) (context.Context, context.CancelFunc) {
		// Leave waits for the others: no time bound, but a signal ends it.
		return signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	}
	if !st.sawDash {
		out := g.out(st)
		out.emit(fmt.Sprintf("entered barrier name=%s count=%d", name, n), event{Event: "entered", Barrier: name, Count: n})
		lctx, lcancel := leaveCtx(c.Context)
		defer lcancel()
		if err := d.Leave(lctx); err != nil {
			if lctx.Err() != nil && c.Context.Err() == nil {
				return withCode(exitNotAcquired, nil, "", "barrier %q: interrupted while waiting for the others to leave", name)
			}
			return fail(err, backendHint, "barrier %q: cannot leave", name)
		}
		out.emit("left barrier name="+name, event{Event: "left", Barrier: name})
		return nil
	}
	ev.emitEvent(event{Event: "entered", Barrier: name, Count: n})
	return st.runHolding(c, g, holding{
		what:       fmt.Sprintf("barrier %q participation", name),
		kind:       "barrier",
		name:       name,
		done:       cn.sess.Done(),
		err:        cn.sess.Err,
		lostErr:    coord.ErrSessionExpired,
		release:    d.Leave,
		releaseCtx: leaveCtx,
		released:   "left",
		env:        []string{"COORD_BARRIER_NAME=" + name, "COORD_BARRIER_COUNT=" + strconv.Itoa(n)},
	}, k.sigs, killAfter)
}
