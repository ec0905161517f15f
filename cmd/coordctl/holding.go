package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/coordkit/coord"
)

// holding is an ownership (a lock, a leadership term, a barrier
// participation) under which coordctl runs CMD.
type holding struct {
	what    string                          // for messages, e.g. `lock "x"`
	kind    string                          // "lock" (default), "election" or "barrier": names the JSON events' field
	name    string                          // the lock, election or barrier name
	token   uint64                          // fencing token (0: none)
	done    <-chan struct{}                 // closed when the ownership ends
	err     func() error                    // why it ended
	lostErr error                           // reported if err() says nothing (default coord.ErrLockLost)
	release func(ctx context.Context) error // gives it up; nil if already gone
	// releaseCtx bounds release (default: g.cleanupCtx, the dial timeout).
	releaseCtx func(parent context.Context) (context.Context, context.CancelFunc)
	released   string   // the JSON event after release (default "released")
	env        []string // added to CMD's environment
}

// tag sets the name field of e that fits h's kind.
func (h *holding) tag(e event) event {
	switch h.kind {
	case "election":
		e.Election = h.name
	case "barrier":
		e.Barrier = h.name
	default:
		e.Lock = h.name
	}
	return e
}

// why returns why h ended.
func (h *holding) why() error {
	if err := h.err(); err != nil {
		return err
	}
	if h.lostErr != nil {
		return h.lostErr
	}
	return coord.ErrLockLost
}

// runHolding runs st.cmd while h is held and returns the error that gives
// coordctl's exit code:
//   - CMD's own exit code (128+N if it died of signal N) when it ran to its end
//     while h stayed held; h is released after CMD exits;
//   - exitLost when h ended while CMD ran: CMD got SIGTERM at once, and SIGKILL
//     killAfter later if it was still running;
//   - exitError when CMD could not be started.
//
// Signals arriving on sigs are forwarded to CMD; coordctl waits for CMD to exit
// and then releases h.
func (st *state) runHolding(c *cli.Context, g globals, h holding, sigs <-chan os.Signal, killAfter time.Duration) error {
	ev := g.events(st)
	release := func() {
		newCtx := h.releaseCtx
		if newCtx == nil {
			newCtx = g.cleanupCtx
		}
		ctx, cancel := newCtx(c.Context)
		defer cancel()
		if err := h.release(ctx); err != nil {
			st.warn("release %s: %v (closing the session releases it too)", h.what, err)
			return
		}
		name := h.released
		if name == "" {
			name = "released"
		}
		ev.emitEvent(h.tag(event{Event: name, Token: h.token}))
	}

	ch, err := startChild(st.cmd, h.env, st.stdout, st.stderr)
	if err != nil {
		release()
		return fail(err, "check the command name and PATH", "cannot run CMD %q", st.cmd[0])
	}
	ev.emitEvent(h.tag(event{Event: "started", Token: h.token, PID: ch.pid()}))

	var (
		lost      error
		ownerDone = h.done
		killTimer <-chan time.Time
	)
	onLoss := func() {
		lost = h.why()
		ownerDone = nil
		if ev != nil {
			ev.emitEvent(h.tag(event{Event: "lost", Token: h.token, Error: lost.Error()}))
		} else {
			fmt.Fprintf(st.stderr, "coordctl: %s lost while CMD ran (%v): sending SIGTERM to CMD, SIGKILL after %s\n", h.what, lost, killAfter)
		}
		ch.signal(syscall.SIGTERM)
		killTimer = time.After(killAfter)
	}
loop:
	for {
		select {
		case <-ch.done:
			break loop
		case s := <-sigs:
			ch.forward(s)
			ev.emitEvent(h.tag(event{Event: "signal", PID: ch.pid(), Signal: sigName(s)}))
		case <-ownerDone:
			onLoss()
		case <-killTimer:
			killTimer = nil
			ch.signal(syscall.SIGKILL)
		}
	}
	if lost == nil {
		select {
		case <-h.done:
			// Ended while CMD was finishing: CMD ran partly unprotected.
			lost = h.why()
		default:
		}
	}
	code := ch.exitCode()
	ev.emitEvent(h.tag(event{Event: "exited", PID: ch.pid(), Code: &code}))
	if lost != nil {
		return withCode(exitLost, lost, fmt.Sprintf("CMD was stopped (%s); its work may be incomplete", ch.describe()),
			"%s was lost while CMD ran", h.what)
	}
	release()
	if code == 0 {
		return nil
	}
	return withCode(code, nil, "", "")
}

// unixSignalName is "SIGTERM" for syscall.SIGTERM, "" if unknown.
func unixSignalName(s syscall.Signal) string { return unix.SignalName(s) }
