package consulcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Consul's bounds on a session TTL.
const (
	minTTL = 10 * time.Second
	maxTTL = 24 * time.Hour
	// maxLockDelay is the longest lock-delay Consul documents.
	maxLockDelay = time.Minute
)

// watchWait is how long one blocking query may wait on the server.
const watchWait = 5 * time.Minute

// session is a Consul session with a TTL and behavior "delete", renewed every
// TTL/3 and watched with a blocking query so that a server-side invalidation
// (TTL expiry, destroy) is seen at once.
type session struct {
	c         *client
	id        string
	ttl       time.Duration
	lockDelay time.Duration

	// ctx is cancelled when the session ends; background work stops on it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	done chan struct{}
	mu   sync.Mutex
	err  error
}

var _ driver.Session = (*session)(nil)

// grantTTL rounds a requested TTL to what Consul accepts: whole seconds, at
// least 10s.
func grantTTL(d time.Duration) (time.Duration, error) {
	if d < minTTL {
		d = minTTL
	}
	d = (d + time.Second - 1).Truncate(time.Second)
	if d > maxTTL {
		return 0, fmt.Errorf("consul: session TTL %s is above Consul's maximum of %s", d, maxTTL)
	}
	return d, nil
}

// NewSession creates a Consul session: TTL as requested (rounded up to whole
// seconds and to Consul's 10s minimum; TTL() reports the granted value), no
// node or serf health checks, behavior "delete" (Consul deletes the keys the
// session acquired when it is invalidated), and lock-delay cfg.LockDelay.
// A "Missing node registration" answer (an agent that has just started) is
// retried with backoff until ctx is done.
//
// Lock-delay is Consul's guard against a holder that has not yet noticed its
// session died: after a session is invalidated, the keys it held cannot be
// acquired by anyone for that long. Consul's own default is 15s; coord's is 0
// (fencing tokens are the safety net) and coord always sends it explicitly.
// See Lock for how the delay applies to coord's queue of per-contender keys.
func (c *client) NewSession(ctx context.Context, cfg driver.SessionConfig) (driver.Session, error) {
	ttl, err := grantTTL(cfg.TTL)
	if err != nil {
		return nil, err
	}
	if cfg.LockDelay < 0 || cfg.LockDelay > maxLockDelay {
		return nil, fmt.Errorf("consul: lock-delay %s is outside Consul's documented range of 0 to %s", cfg.LockDelay, maxLockDelay)
	}
	body := map[string]any{
		"Name":       "coord",
		"TTL":        ttl.String(),
		"Behavior":   api.SessionBehaviorDelete,
		"LockDelay":  fmt.Sprintf("%dms", cfg.LockDelay.Milliseconds()),
		"NodeChecks": []string{},
	}
	var out struct{ ID string }
	var start time.Time
	b := backoff{}
	for {
		start = time.Now()
		_, err := c.cli.Raw().Write("/v1/session/create", body, &out, (&api.WriteOptions{}).WithContext(ctx))
		if err == nil {
			break
		}
		// An agent that has just started may not have registered its node
		// in the catalog yet; that resolves itself within moments.
		if !strings.Contains(err.Error(), "Missing node registration") || !b.sleep(ctx) {
			return nil, c.failed("create session", err)
		}
	}
	if out.ID == "" {
		return nil, fmt.Errorf("consul %s: create session: empty session ID in the answer: %w", c.desc, coord.ErrCorrupt)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{
		c: c, id: out.ID, ttl: ttl, lockDelay: cfg.LockDelay,
		ctx: sctx, cancel: cancel, done: make(chan struct{}),
	}
	s.wg.Add(2)
	go s.renew(start)
	go s.watch()
	return s, nil
}

// ID is the Consul session ID.
func (s *session) ID() string { return s.id }

// TTL is the granted TTL (at least 10s).
func (s *session) TTL() time.Duration { return s.ttl }

// Done is closed when the session is closed or lost.
func (s *session) Done() <-chan struct{} { return s.done }

// Err is nil while the session is live, then wraps coord.ErrSessionClosed or
// coord.ErrSessionExpired.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// end ends the session with err once; it reports whether this call did.
func (s *session) end(err error) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.err = err
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	return true
}

// background runs fn in a goroutine that Close waits for, with a context
// cancelled when the session ends. It does nothing once the session ended.
func (s *session) background(fn func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// lose ends the session as expired, for the given reason.
func (s *session) lose(reason string) {
	s.end(fmt.Errorf("%w: consul session %s: %s", coord.ErrSessionExpired, s.id, reason))
}

// Close destroys the session on the server, which deletes every key it
// acquired at once. Closing a session that already ended returns nil (a lost
// session is still destroyed on a best-effort basis, in case the server has
// not invalidated it yet).
func (s *session) Close(ctx context.Context) error {
	first := s.end(fmt.Errorf("%w: consul session %s", coord.ErrSessionClosed, s.id))
	s.wg.Wait()
	if !first && errors.Is(s.Err(), coord.ErrSessionClosed) {
		return nil
	}
	_, err := s.c.cli.Session().Destroy(s.id, (&api.WriteOptions{}).WithContext(ctx))
	if !first || err == nil {
		return nil
	}
	return s.c.failed("destroy session "+s.id, err)
}

// renew renews the session every TTL/3, retrying failures every TTL/20. The
// session is lost when Consul says it no longer exists, or when no renewal
// succeeded for a full TTL, counted from the moment the last successful
// renewal was sent (Consul waits up to 2×TTL before invalidating it, so the
// client gives up first).
func (s *session) renew(lastOK time.Time) {
	defer s.wg.Done()
	interval, retry := s.ttl/3, s.ttl/20
	next := lastOK.Add(interval)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		deadline := lastOK.Add(s.ttl)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			s.lose(fmt.Sprintf("no successful renewal for %s", s.ttl))
			s.destroyAfterLoss()
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(s.ctx, deadline)
		entry, _, err := s.c.cli.Session().Renew(s.id, (&api.WriteOptions{}).WithContext(rctx))
		cancel()
		switch {
		case s.ctx.Err() != nil:
			return
		case err == nil && entry == nil:
			s.lose("the server no longer knows it (invalidated or destroyed)")
			return
		case err == nil:
			lastOK = sent
			next = sent.Add(interval)
		default:
			next = time.Now().Add(retry)
		}
		if d := lastOK.Add(s.ttl); next.After(d) {
			next = d
		}
		t.Reset(time.Until(next))
	}
}

// destroyAfterLoss tries to destroy a session the client gave up on, so the
// server releases its keys now rather than after up to 2×TTL.
func (s *session) destroyAfterLoss() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.c.cli.Session().Destroy(s.id, (&api.WriteOptions{}).WithContext(ctx))
}

// watch holds a blocking query on the session's entry and ends the session
// as soon as the server no longer has it.
func (s *session) watch() {
	defer s.wg.Done()
	var index uint64
	for s.ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(s.ctx)
		entry, meta, err := s.c.cli.Session().Info(s.id, q)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			// The renewal loop decides when the session is lost; just retry.
			if !sleepCtx(s.ctx, time.Second) {
				return
			}
			continue
		}
		if entry == nil {
			s.lose("invalidated by the server (TTL expired or destroyed)")
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// nextIndex is the WaitIndex for the next blocking query: the last one, or 0
// when the server's index went backwards (a snapshot restore).
func nextIndex(prev, last uint64) uint64 {
	if last < prev {
		return 0
	}
	return last
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
