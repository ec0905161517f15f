package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/coordkit/coord"
)

// interrupted is the cancellation cause when coordctl got a signal before CMD
// started.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + sigName(i.sig) }

// catcher catches SIGINT, SIGTERM and SIGHUP from its creation on. Until
// stopWatch is called, the first signal cancels ctx with cause interrupted;
// after stopWatch, signals queue on sigs (for forwarding to CMD).
type catcher struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sigs   chan os.Signal

	once      sync.Once
	stop      chan struct{}
	watchDone chan struct{}
}

func catchSignals(parent context.Context) *catcher {
	k := &catcher{sigs: make(chan os.Signal, 4), stop: make(chan struct{}), watchDone: make(chan struct{})}
	signal.Notify(k.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	k.ctx, k.cancel = context.WithCancelCause(parent)
	go func() {
		defer close(k.watchDone)
		select {
		case s := <-k.sigs:
			k.cancel(interrupted{s})
		case <-k.stop:
		}
	}()
	return k
}

// stopWatch ends the cancel-on-signal phase; later signals stay on sigs.
func (k *catcher) stopWatch() {
	k.once.Do(func() { close(k.stop); <-k.watchDone })
}

// close stops catching signals.
func (k *catcher) close() {
	k.stopWatch()
	signal.Stop(k.sigs)
	k.cancel(nil)
}

// interrupt returns the signal that cancelled ctx, if any.
func (k *catcher) interrupt() (interrupted, bool) {
	var i interrupted
	ok := errors.As(context.Cause(k.ctx), &i)
	return i, ok
}

// connection is an open client and, if asked for, a session.
type connection struct {
	client *coord.Client
	sess   *coord.Session
}

// connect opens the client and, with session set, a session, within k.ctx.
// If a signal interrupts it, the error has exit code 3 and says what was not
// done (notDone, e.g. `lock "x" not acquired`). close releases everything.
func (st *state) connect(g globals, k *catcher, session bool, notDone string) (*connection, error) {
	interruptedErr := func(err error) error {
		if i, ok := k.interrupt(); ok {
			return withCode(exitNotAcquired, nil, "", "%s: %s; nothing was run", notDone, i.Error())
		}
		return err
	}
	client, err := g.open(k.ctx)
	if err != nil {
		return nil, interruptedErr(err)
	}
	cn := &connection{client: client}
	if !session {
		return cn, nil
	}
	cn.sess, err = g.newSession(k.ctx, client)
	if err != nil {
		_ = client.Close()
		return nil, interruptedErr(err)
	}
	return cn, nil
}

// close ends the session (releasing what it still owns at once) and the
// client.
func (cn *connection) close(g globals, parent context.Context) {
	if cn.sess != nil && cn.sess.Err() == nil {
		cctx, ccancel := g.cleanupCtx(parent)
		_ = cn.sess.Close(cctx)
		ccancel()
	}
	_ = cn.client.Close()
}
