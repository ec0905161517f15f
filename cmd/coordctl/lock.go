package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

const lockUsage = "usage: coordctl lock [--wait D | --try] [--kill-after D] NAME -- CMD [ARGS...]"

func lockCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "run CMD while holding the lock NAME",
		ArgsUsage: "NAME -- CMD [ARGS...]",
		Description: "Waits for the lock NAME (at most --wait, or not at all with --try), then runs CMD with\n" +
			"COORD_LOCK_NAME and COORD_FENCING_TOKEN in its environment, releases the lock when CMD exits\n" +
			"and exits with CMD's exit code. SIGINT, SIGTERM and SIGHUP are forwarded to CMD.\n" +
			"If the lock is lost while CMD runs (session expired), CMD gets SIGTERM, then SIGKILL after\n" +
			"--kill-after, and coordctl exits 4. Exits 3 when the lock was not acquired.\n" +
			"With --output json, progress events (waiting, acquired, started, signal, lost, exited,\n" +
			"released) go to stderr as JSON lines; stdout is left to CMD.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "wait", Usage: "give up after waiting `D` for the lock (exit 3)", DefaultText: "wait forever"},
			&cli.BoolFlag{Name: "try", Usage: "do not wait: exit 3 at once if the lock is held"},
			&cli.DurationFlag{Name: "kill-after", Value: 10 * time.Second, Usage: "after a loss, SIGKILL CMD if it is still running `D` after SIGTERM"},
		},
		Action: func(c *cli.Context) error { return st.runLock(c) },
	}
}

// interrupted is the cancellation cause when coordctl got a signal before CMD
// started.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + sigName(i.sig) }

var errWaitExpired = errors.New("--wait expired")

func (st *state) runLock(c *cli.Context) error {
	g, err := st.globals(c)
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return usage(lockUsage, "lock: missing NAME")
	case len(args) > 1:
		return usage(lockUsage, "lock: unexpected argument %q after NAME (CMD goes after --)", args[1])
	case !st.sawDash || len(st.cmd) == 0:
		return usage(lockUsage, "lock: missing CMD after --")
	}
	name := args[0]
	if err := coord.ValidateName(name); err != nil {
		return usage("choose another lock name", "lock: %v", err)
	}
	try, wait, killAfter := c.Bool("try"), c.Duration("wait"), c.Duration("kill-after")
	switch {
	case try && c.IsSet("wait"):
		return usage(lockUsage, "lock: --try and --wait exclude each other")
	case wait < 0:
		return usage(lockUsage, "lock: --wait %s is negative", wait)
	case killAfter < 0:
		return usage(lockUsage, "lock: --kill-after %s is negative", killAfter)
	case c.IsSet("wait") && wait == 0:
		try = true
	}

	// Signals are caught from the start: before CMD runs, one cancels the
	// wait (and everything is cleaned up); while CMD runs, they are forwarded.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(c.Context)
	defer cancel(nil)
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case s := <-sigs:
			cancel(interrupted{s})
		case <-stopWatch:
		}
	}()
	var stopOnce sync.Once
	stopSignalWatch := func() { stopOnce.Do(func() { close(stopWatch); <-watchDone }) }
	defer stopSignalWatch()
	notAcquired := func(what string) error {
		return withCode(exitNotAcquired, nil, "", "lock %q not acquired: %s; nothing was run", name, what)
	}

	ev := g.events(st)
	client, err := g.open(ctx)
	if err != nil {
		stopSignalWatch()
		if cause := context.Cause(ctx); cause != nil {
			return notAcquired(cause.Error())
		}
		return err
	}
	defer client.Close()
	sess, err := g.newSession(ctx, client)
	if err != nil {
		stopSignalWatch()
		if cause := context.Cause(ctx); cause != nil {
			return notAcquired(cause.Error())
		}
		return err
	}
	defer func() {
		if sess.Err() != nil {
			return // already closed or expired: nothing left on the server
		}
		cctx, ccancel := g.cleanupCtx(c.Context)
		defer ccancel()
		_ = sess.Close(cctx)
	}()
	m, err := lock.NewMutex(sess, name)
	if err != nil {
		stopSignalWatch()
		return fail(err, "", "lock")
	}

	lockCtx := ctx
	if wait > 0 && !try {
		var lcancel context.CancelFunc
		lockCtx, lcancel = context.WithTimeoutCause(ctx, wait, errWaitExpired)
		defer lcancel()
	}
	ev.emitEvent(event{Event: "waiting", Lock: name, Session: sess.ID()})
	var guard *lock.Guard
	if try {
		guard, err = m.TryLock(lockCtx)
	} else {
		guard, err = m.Lock(lockCtx)
	}
	stopSignalWatch()
	if err == nil && context.Cause(ctx) != nil {
		// A signal arrived just as the lock was granted: honour it.
		err = context.Cause(ctx)
		rctx, rcancel := g.cleanupCtx(c.Context)
		_ = guard.Unlock(rctx)
		rcancel()
	}
	if err != nil {
		ev.emitEvent(event{Event: "not-acquired", Lock: name, Error: err.Error()})
		var intr interrupted
		switch {
		case errors.Is(err, coord.ErrLocked):
			return withCode(exitNotAcquired, nil, "retry later, or use --wait D to wait for it",
				"lock %q is held by another holder", name)
		case errors.As(context.Cause(ctx), &intr):
			return notAcquired(intr.Error())
		case errors.Is(context.Cause(lockCtx), errWaitExpired):
			return withCode(exitNotAcquired, nil, "retry later, or raise --wait",
				"lock %q not acquired within --wait %s: it is still held", name, wait)
		default:
			return fail(err, backendHint, "cannot acquire lock %q", name)
		}
	}
	token := uint64(guard.Token())
	ev.emitEvent(event{Event: "acquired", Lock: name, Token: token, Session: sess.ID()})
	return st.runHolding(c, g, holding{
		what:  fmt.Sprintf("lock %q", name),
		name:  name,
		token: token,
		done:  guard.Done(),
		err:   guard.Err,
		release: func(ctx context.Context) error {
			err := guard.Unlock(ctx)
			if errors.Is(err, coord.ErrNotHeld) {
				return nil
			}
			return err
		},
		env: []string{"COORD_LOCK_NAME=" + name, "COORD_FENCING_TOKEN=" + strconv.FormatUint(token, 10)},
	}, sigs, killAfter)
}

func sigName(s os.Signal) string {
	if ss, ok := s.(syscall.Signal); ok {
		if n := unixSignalName(ss); n != "" {
			return n
		}
	}
	return s.String()
}

// emitEvent prints e when events are on (--output json).
func (p *printer) emitEvent(e event) {
	if p != nil {
		p.emit("", e)
	}
}
