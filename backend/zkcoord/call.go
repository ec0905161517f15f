package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/go-zookeeper/zk"
)

// call runs op, a go-zookeeper request (which knows no context and blocks
// while the connection is down), and waits for its answer, ctx, or the end of
// the session. When it gives up first, op finishes in the background and late
// (if not nil) receives its outcome, so that a write that took effect after
// all can be undone.
//
// A request that meets an expired ZooKeeper session ends the coord session,
// and a session on a user's connection refuses to run op once go-zookeeper
// has moved that connection to a new ZooKeeper session.
func call[T any](ctx context.Context, s *session, op func() (T, error), late func(T, error)) (T, error) {
	var zero T
	if !s.owned && s.conn.SessionID() != s.sid {
		s.expired(fmt.Errorf("%w: ZooKeeper session %#x was replaced by %#x", coord.ErrSessionExpired, s.sid, s.conn.SessionID()))
		return zero, s.Err()
	}
	v, err := run(ctx, s.Done(), op, late)
	if errors.Is(err, zk.ErrSessionExpired) {
		s.expired(fmt.Errorf("%w: ZooKeeper session %#x expired", coord.ErrSessionExpired, s.sid))
	}
	if err != nil && s.Err() != nil && (isConnErr(err) || errors.Is(err, errStopped)) {
		return v, s.Err()
	}
	return v, err
}

// errStopped is run's error when stop closed first.
var errStopped = errors.New("zkcoord: stopped")

// run is call with an explicit stop channel (nil: only ctx), for cleanup that
// must go on after the session ended.
func run[T any](ctx context.Context, stop <-chan struct{}, op func() (T, error), late func(T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	go func() {
		v, err := op()
		mu.Lock()
		if abandoned {
			mu.Unlock()
			if late != nil {
				late(v, err)
			}
			return
		}
		ch <- result{v, err}
		mu.Unlock()
	}()
	var zero T
	var why error
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		why = ctx.Err()
	case <-stop:
		why = errStopped
	}
	mu.Lock()
	abandoned = true
	select {
	case r := <-ch:
		mu.Unlock()
		if late != nil {
			late(r.v, r.err)
		}
	default:
		mu.Unlock()
	}
	return zero, why
}

// isConnErr reports errors after which the request's outcome is unknown or
// it was never sent: the connection dropped, no server answered, or the
// connection is closing.
func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrClosing) || errors.Is(err, zk.ErrSessionExpired)
}

// retryPause is the pause before repeating a request that failed because the
// connection was down (only on that failure path; waiters never poll).
const retryPause = 100 * time.Millisecond

// pause waits retryPause, or returns ctx's or the session's error.
func pause(ctx context.Context, s *session) error {
	t := time.NewTimer(retryPause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.Done():
		return s.Err()
	}
}

// cleanupContext bounds cleanup after a failure: a context that ignores the
// caller's cancellation and ends after the session timeout (after which the
// server has dropped an owned session's nodes anyway).
func cleanupContext(ctx context.Context, s *session) (context.Context, context.CancelFunc) {
	d := s.ttl
	if d < time.Second {
		d = time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
