package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// session is an etcd lease kept alive by clientv3's keep-alive stream.
//
// It is lost (Err wraps coord.ErrSessionExpired) when etcd reports the lease
// gone, or when no keep-alive response has arrived for a full TTL since the
// last one (or since the grant was sent): the client-side deadline. That
// deadline runs from when a response is received, so it can trail the
// server's expiry by the response's network delay; etcd itself only reaps
// expired leases every 500ms, which in practice more than covers it.
//
// A lease revoked or expired on the server is noticed within a round trip:
// the session keeps a marker key bound to its lease (<root>session/<lease>)
// and one watch on it, so the lease's end deletes the marker and the watch
// reports it. That is one watch per session, whatever the number of locks it
// holds. Without the marker (a user who may not write it), the keep-alive
// reports a revoked lease within about a third of the TTL.
type session struct {
	c   *client
	id  clientv3.LeaseID
	hex string
	ttl time.Duration

	// ctx is cancelled, with the session's error as cause, when the session
	// ends; Done and Err read it.
	ctx    context.Context
	cancel context.CancelCauseFunc

	kaCancel context.CancelFunc // stops the keep-alive and the marker watch
	loops    sync.WaitGroup     // the keep-alive loop and the marker watch
	closeMu  sync.Mutex
	closed   bool

	keysMu sync.Mutex
	spare  map[string][]string // lock prefix → released contender keys (keys.go)
}

var _ driver.Session = (*session)(nil)

// NewSession grants a lease of cfg.TTL rounded up to whole seconds (etcd may
// raise it to its minimum, 2s with default server settings; TTL reports what
// was granted) and keeps it alive in the background.
func (c *client) NewSession(ctx context.Context, cfg driver.SessionConfig) (driver.Session, error) {
	secs := int64((cfg.TTL + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	sent := time.Now()
	g, err := c.cli.Grant(ctx, secs)
	if err != nil {
		return nil, c.rpcErr(ctx, "grant lease", err)
	}
	s := &session{
		c:   c,
		id:  g.ID,
		hex: strconv.FormatInt(int64(g.ID), 16),
		ttl: time.Duration(g.TTL) * time.Second,
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	kctx, kcancel := context.WithCancel(context.Background())
	s.kaCancel = kcancel
	fail := func(op string, err error) error {
		kcancel()
		s.cancel(nil)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_, _ = c.cli.Revoke(rctx, g.ID)
		cancel()
		return c.rpcErr(ctx, op, err)
	}
	// Keep-alive starts before the marker write, so a slow write does not
	// delay the lease's first renewal (the server counts the TTL from the
	// grant).
	ch, err := c.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		return nil, fail("keep lease alive", err)
	}
	s.loops.Add(1)
	go s.keepAlive(kctx, ch, sent.Add(s.ttl))
	markerRev, err := s.putMarker(ctx)
	if err != nil && !denied(err) {
		err = fail("put session marker", err)
		s.loops.Wait()
		return nil, err
	}
	if markerRev > 0 {
		s.loops.Add(1)
		go s.watchMarker(kctx, markerRev)
	}
	return s, nil
}

// keepAlive consumes keep-alive responses and ends the session as lost when
// the lease is gone or the deadline passes without a response.
func (s *session) keepAlive(kctx context.Context, ch <-chan *clientv3.LeaseKeepAliveResponse, deadline time.Time) {
	defer s.loops.Done()
	defer s.kaCancel()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-ch:
			if kctx.Err() != nil {
				return // closing
			}
			if !ok {
				s.end(fmt.Errorf("etcd lease %s: %w: the lease is gone or was not renewed within its TTL (%s)", s.hex, coord.ErrSessionExpired, s.ttl))
				return
			}
			if resp.TTL <= 0 {
				s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
				return
			}
			timer.Reset(time.Duration(resp.TTL) * time.Second)
		case <-timer.C:
			s.end(fmt.Errorf("etcd lease %s: %w: no keep-alive response within the TTL (%s)", s.hex, coord.ErrSessionExpired, s.ttl))
			return
		case <-kctx.Done():
			return
		case <-s.ctx.Done():
			return // lost (seen by the marker watch) or closing
		}
	}
}

// end ends the session with err; only the first call has an effect.
func (s *session) end(err error) { s.cancel(err) }

// leaseGone asks the server whether the lease still exists, after one of the
// session's keys (its marker, a lock key) vanished; if it does not, it ends the session as expired at
// once instead of waiting for the next keep-alive response. It reports
// whether the lease is gone.
func (s *session) leaseGone(ctx context.Context) bool {
	if s.Err() != nil {
		return errors.Is(s.Err(), coord.ErrSessionExpired)
	}
	ttl, err := s.c.cli.TimeToLive(ctx, s.id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false
	}
	if err != nil || ttl.TTL < 0 { // -1: not found; 0 can mean "less than a second left"
		s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
		return true
	}
	return false
}

// ID is the lease ID in hexadecimal (as etcdctl prints it).
func (s *session) ID() string { return s.hex }

// TTL is the lease TTL granted by etcd.
func (s *session) TTL() time.Duration { return s.ttl }

// Done is closed when the session is closed or lost.
func (s *session) Done() <-chan struct{} { return s.ctx.Done() }

// Err is nil while the session is live; then it wraps coord.ErrSessionClosed
// or coord.ErrSessionExpired.
func (s *session) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return context.Cause(s.ctx)
}

// Close ends the session (Done closes first, so no holder believes it still
// holds a lock the revoke is releasing), stops the keep-alive and revokes the
// lease, which deletes every key the session owns in one request. The revoke
// waits at most one TTL (after that the lease has run out anyway). A lost
// session has nothing left to revoke; calling Close again returns nil.
func (s *session) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	lost := s.Err() != nil
	s.end(fmt.Errorf("etcd lease %s: %w", s.hex, coord.ErrSessionClosed))
	s.kaCancel()
	s.loops.Wait()
	if lost {
		// The server reported the lease gone, or it went a full TTL without
		// a renewal: there is nothing left to release.
		return nil
	}
	// Once the keep-alive has stopped, the lease runs out within a TTL by
	// itself, so waiting longer than that for the revoke gains nothing.
	rctx, cancel := context.WithTimeout(ctx, s.ttl)
	defer cancel()
	if _, err := s.c.cli.Revoke(rctx, s.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcd: close session: revoke lease %s (its keys stay until the TTL runs out): %w", s.hex, s.c.rpcErr(rctx, "revoke", err))
	}
	return nil
}

// rpcErr wraps an error from an etcd call: a wrapped ctx error when ctx is
// done, coord.ErrSessionExpired for a lease the server no longer has, and
// coord.ErrUnavailable otherwise (except for permission errors).
func (c *client) rpcErr(ctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			return fmt.Errorf("etcd %s: %w: %w", op, ctx.Err(), cause)
		}
		return fmt.Errorf("etcd %s: %w", op, ctx.Err())
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("etcd %s: %w: %v", op, coord.ErrSessionExpired, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrUserEmpty),
		errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrInvalidAuthToken):
		return fmt.Errorf("etcd %s at %s: %w", op, c.endpoints, err)
	default:
		return fmt.Errorf("etcd %s at %s: %w: %w", op, c.endpoints, coord.ErrUnavailable, err)
	}
}
