package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

const lockUsage = "usage: coordctl lock [--wait D | --try] [--limit N | --shared | --write] [--kill-after D] NAME -- CMD [ARGS...]"

func lockCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "run CMD while holding the lock NAME (or a semaphore permit, or a read-write lock)",
		ArgsUsage: "NAME -- CMD [ARGS...]",
		Description: "Waits for the lock NAME (at most --wait, or not at all with --try), then runs CMD with\n" +
			"COORD_LOCK_NAME and COORD_FENCING_TOKEN in its environment, releases the lock when CMD exits\n" +
			"and exits with CMD's exit code. SIGINT, SIGTERM and SIGHUP are forwarded to CMD.\n" +
			"If the lock is lost while CMD runs (session expired), CMD gets SIGTERM, then SIGKILL after\n" +
			"--kill-after, and coordctl exits 4. Exits 3 when the lock was not acquired.\n" +
			"\n" +
			"Kinds of lock (each kind is a separate lock, even under the same NAME):\n" +
			"  (default)   an exclusive lock: one holder at a time.\n" +
			"  --limit N   a semaphore: at most N holders at a time. Every user of NAME must give the same N.\n" +
			"  --shared    the reader side of a read-write lock: readers run together, never with a writer.\n" +
			"  --write     the writer side of that read-write lock: alone, excluding readers and writers.\n" +
			"A plain `lock NAME` does not exclude --shared or --write holders of NAME, nor semaphore\n" +
			"holders: use --write (not the default) to exclude the readers of a read-write lock.\n" +
			"\n" +
			"With --output json, progress events (waiting, acquired, started, signal, lost, exited,\n" +
			"released) go to stderr as JSON lines; stdout is left to CMD.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "wait", Usage: "give up after waiting `D` for the lock (exit 3)", DefaultText: "wait forever"},
			&cli.BoolFlag{Name: "try", Usage: "do not wait: exit 3 at once if the lock is held"},
			&cli.IntFlag{Name: "limit", Usage: "semaphore: let at most `N` holders run at once"},
			&cli.BoolFlag{Name: "shared", Usage: "take the read (shared) side of the read-write lock NAME"},
			&cli.BoolFlag{Name: "write", Usage: "take the write (exclusive) side of the read-write lock NAME"},
			&cli.DurationFlag{Name: "kill-after", Value: 10 * time.Second, Usage: "after a loss, SIGKILL CMD if it is still running `D` after SIGTERM"},
		},
		Action: func(c *cli.Context) error { return st.runLock(c) },
	}
}

var errWaitExpired = errors.New("--wait expired")

// lockKind is the primitive `lock` takes: a Mutex, a Semaphore permit or a
// side of an RWMutex.
type lockKind struct {
	what    string // for messages: "lock", "semaphore", "read lock", "write lock"
	busy    string // why --try failed, e.g. "is held by another holder"
	acquire func(ctx context.Context, s *coord.Session, name string, try bool) (*lock.Guard, error)
}

func parseLockKind(c *cli.Context) (lockKind, error) {
	limit, shared, write := c.Int("limit"), c.Bool("shared"), c.Bool("write")
	switch {
	case c.IsSet("limit") && (shared || write):
		return lockKind{}, usage(lockUsage, "lock: --limit excludes --shared and --write")
	case shared && write:
		return lockKind{}, usage(lockUsage, "lock: --shared and --write exclude each other")
	case c.IsSet("limit") && limit < 1:
		return lockKind{}, usage(lockUsage, "lock: --limit %d, want at least 1", limit)
	case c.IsSet("limit"):
		return lockKind{what: "semaphore", busy: fmt.Sprintf("has no free permit (all %d taken)", limit), acquire: func(ctx context.Context, s *coord.Session, name string, try bool) (*lock.Guard, error) {
			m, err := lock.NewSemaphore(s, name, limit)
			if err != nil {
				return nil, err
			}
			if try {
				return m.TryAcquire(ctx)
			}
			return m.Acquire(ctx)
		}}, nil
	case shared || write:
		what, busy := "read lock", "is held by a writer, or a writer waits for it"
		if write {
			what, busy = "write lock", "is held by readers or a writer"
		}
		return lockKind{what: what, busy: busy, acquire: func(ctx context.Context, s *coord.Session, name string, try bool) (*lock.Guard, error) {
			m, err := lock.NewRWMutex(s, name)
			if err != nil {
				return nil, err
			}
			switch {
			case write && try:
				return m.TryLock(ctx)
			case write:
				return m.Lock(ctx)
			case try:
				return m.TryRLock(ctx)
			default:
				return m.RLock(ctx)
			}
		}}, nil
	default:
		return lockKind{what: "lock", busy: "is held by another holder", acquire: func(ctx context.Context, s *coord.Session, name string, try bool) (*lock.Guard, error) {
			m, err := lock.NewMutex(s, name)
			if err != nil {
				return nil, err
			}
			if try {
				return m.TryLock(ctx)
			}
			return m.Lock(ctx)
		}}, nil
	}
}

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
	kind, err := parseLockKind(c)
	if err != nil {
		return err
	}

	// Signals are caught from the start: before CMD runs, one cancels the
	// wait (and everything is cleaned up); while CMD runs, they are forwarded.
	k := catchSignals(c.Context)
	defer k.close()
	what := fmt.Sprintf("%s %q", kind.what, name)
	cn, err := st.connect(g, k, true, what+" not acquired")
	if err != nil {
		return err
	}
	defer cn.close(g, c.Context)
	sess := cn.sess

	ev := g.events(st)
	lockCtx := k.ctx
	if wait > 0 && !try {
		var lcancel context.CancelFunc
		lockCtx, lcancel = context.WithTimeoutCause(k.ctx, wait, errWaitExpired)
		defer lcancel()
	}
	ev.emitEvent(event{Event: "waiting", Lock: name, Session: sess.ID()})
	guard, err := kind.acquire(lockCtx, sess, name, try)
	k.stopWatch()
	if err == nil && context.Cause(k.ctx) != nil {
		// A signal arrived just as the lock was granted: honour it.
		err = context.Cause(k.ctx)
		rctx, rcancel := g.cleanupCtx(c.Context)
		_ = guard.Unlock(rctx)
		rcancel()
	}
	if err != nil {
		ev.emitEvent(event{Event: "not-acquired", Lock: name, Error: err.Error()})
		switch intr, isIntr := k.interrupt(); {
		case errors.Is(err, coord.ErrLocked):
			return withCode(exitNotAcquired, nil, "retry later, or use --wait D to wait for it",
				"%s %s", what, kind.busy)
		case isIntr:
			return withCode(exitNotAcquired, nil, "", "%s not acquired: %s; nothing was run", what, intr.Error())
		case errors.Is(context.Cause(lockCtx), errWaitExpired):
			return withCode(exitNotAcquired, nil, "retry later, or raise --wait",
				"%s not acquired within --wait %s: it is still held", what, wait)
		case errors.Is(err, coord.ErrUnsupported):
			return fail(err, "use another backend", "cannot acquire %s", what)
		default:
			return fail(err, backendHint, "cannot acquire %s", what)
		}
	}
	token := uint64(guard.Token())
	ev.emitEvent(event{Event: "acquired", Lock: name, Token: token, Session: sess.ID()})
	return st.runHolding(c, g, holding{
		what:  what,
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
	}, k.sigs, killAfter)
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
