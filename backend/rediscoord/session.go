package rediscoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
)

// minTTL is the shortest session TTL: shorter TTLs are rounded up to it.
const minTTL = 100 * time.Millisecond

// session is a Redis session: the key NS:session:ID with a PX TTL, renewed
// with everything it holds by a heartbeat every TTL/3.
//
// It is lost when a renewal finds the key gone, or when no renewal succeeded
// for 9/10 of the TTL since the last successful one was sent: the server
// cannot expire the session's keys before that (they expire a full TTL after
// the server received that renewal), so a holder learns of the loss before
// anyone else can take its locks.
type session struct {
	c     *client
	id    string
	ttl   time.Duration
	key   string
	owned string

	ctx    context.Context // cancelled by Close: ends in-flight heartbeat calls
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close: stops the heartbeat
	hbDone chan struct{} // closed when the heartbeat goroutine has returned
	done   chan struct{} // closed by end

	closeOnce sync.Once
	mu        sync.Mutex
	err       error
	helds     map[string]holding // by WID
	abandoned map[string]string  // WID → owned-set member of calls whose clean-up failed
}

// holding is an ownership that ends when its session does: a held lock, a
// leadership term, a read-write lock or semaphore holding.
type holding interface {
	// endLost ends the holding as lost because of cause.
	endLost(cause error)
}

var _ driver.Session = (*session)(nil)

// NewSession creates the session key with a PX TTL of cfg.TTL (at least
// 100ms) and starts its heartbeat. It fails with an error wrapping
// coord.ErrUnavailable when Redis does not answer within ctx.
func (c *client) NewSession(ctx context.Context, cfg driver.SessionConfig) (driver.Session, error) {
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = c.opts.TTL
	}
	ttl = max(ttl.Round(time.Millisecond), minTTL)
	id := randomID(16)
	s := &session{
		c: c, id: id, ttl: ttl, key: c.sessionKey(id), owned: c.ownedKey(id),
		stop: make(chan struct{}), hbDone: make(chan struct{}), done: make(chan struct{}),
		helds: map[string]holding{}, abandoned: map[string]string{},
	}
	sent := time.Now()
	ok, err := c.rdb.SetNX(ctx, s.key, ttl.String(), ttl).Result()
	if err != nil {
		return nil, c.errUnavailable(fmt.Errorf("create session key: %w", err))
	}
	if !ok {
		return nil, fmt.Errorf("redis %s: session key %s already exists: %w", c.addr, s.key, coord.ErrCorrupt)
	}
	if !c.track(s) {
		_ = c.rdb.Del(context.WithoutCancel(ctx), s.key, s.owned).Err()
		return nil, fmt.Errorf("redis %s: client is closed: %w", c.addr, coord.ErrUnavailable)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.heartbeat(sent)
	return s, nil
}

// ID is the random hex suffix of the session key.
func (s *session) ID() string { return s.id }

// TTL is the session key's PX TTL.
func (s *session) TTL() time.Duration { return s.ttl }

// Done is closed when the session is closed or lost.
func (s *session) Done() <-chan struct{} { return s.done }

// Err is nil while the session is live; then it wraps coord.ErrSessionClosed
// or coord.ErrSessionExpired.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the heartbeat, then deletes the session key, releases every lock
// the session holds and removes its waiters in one script, waking the next
// waiter of each lock. Locks held by the session end with an error wrapping
// coord.ErrLockLost and coord.ErrSessionClosed. If Redis cannot be reached
// the session still ends locally (its keys then expire within the TTL) and
// the error wraps coord.ErrUnavailable. Calling Close again returns nil.
func (s *session) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.cancel()
		<-s.hbDone
		if s.Err() != nil {
			return // lost earlier; the heartbeat already cleaned up
		}
		if kerr := s.c.kill(ctx, s.id); kerr != nil {
			err = kerr
		}
		s.end(fmt.Errorf("redis session %s: %w", s.id, coord.ErrSessionClosed))
	})
	return err
}

// end ends every lock the session holds with coord.Lost(err), then the
// session itself with err. Only the first call has an effect.
func (s *session) end(err error) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.err = err
	helds := s.helds
	s.helds = nil
	s.mu.Unlock()
	for _, h := range helds { // before Done closes: a session's Done implies its holdings' Done
		h.endLost(err)
	}
	close(s.done)
	s.c.untrack(s)
	return true
}

// addHeld registers h (the holding of call wid) so that it ends when the
// session does. It reports false, registering nothing, when the session has
// already ended.
func (s *session) addHeld(wid string, h holding) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.helds[wid] = h
	return true
}

func (s *session) removeHeld(wid string) {
	s.mu.Lock()
	delete(s.helds, wid)
	s.mu.Unlock()
}

// lostHeld ends the holding WID that the heartbeat found taken or deleted by
// someone else.
func (s *session) lostHeld(wid string) {
	s.mu.Lock()
	h := s.helds[wid]
	delete(s.helds, wid)
	s.mu.Unlock()
	if h != nil {
		h.endLost(fmt.Errorf("redis session %s: its key for call %s was deleted or overwritten by someone else", s.id, wid))
	}
}

// abandon records a Lock call on lock base whose clean-up script failed: the
// next successful renewal removes its entries (see lua/renew.lua).
func (s *session) abandon(wid, base string) {
	s.abandonOwned(wid, "w "+wid+" "+base)
}

// abandonOwned records a call whose clean-up script failed by its owned-set
// member (see lua/recipes.lua, drop_owned): the next successful renewal
// removes what it left behind.
func (s *session) abandonOwned(wid, member string) {
	s.mu.Lock()
	if s.err == nil {
		s.abandoned[wid] = member
	}
	s.mu.Unlock()
}

// renewArgs returns the renew script's arguments, with the abandoned calls.
func (s *session) renewArgs() (args []any, dropped []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	args = []any{s.id, s.ttl.Milliseconds(), s.c.sessionPrefix()}
	for wid, member := range s.abandoned {
		args = append(args, member)
		dropped = append(dropped, wid)
	}
	return args, dropped
}

func (s *session) forget(dropped []string) {
	s.mu.Lock()
	for _, wid := range dropped {
		delete(s.abandoned, wid)
	}
	s.mu.Unlock()
}

type renewal struct {
	sent    time.Time
	res     []any
	err     error
	dropped []string
}

// heartbeat renews the session every TTL/3 (sooner after a failure) and ends
// it when Redis says it is gone or when the client-side deadline passes.
func (s *session) heartbeat(sent time.Time) {
	defer close(s.hbDone)
	interval := s.ttl / 3
	retry := max(interval/4, 10*time.Millisecond)
	grace := s.ttl - s.ttl/10
	deadline := sent.Add(grace)
	lost := time.NewTimer(time.Until(deadline))
	defer lost.Stop()
	next := time.NewTimer(interval)
	defer next.Stop()
	results := make(chan renewal, 1)
	inflight := false
	var lastErr error
	defer func() {
		if inflight {
			<-results
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-s.done: // lost, as found by a Lock call
			return
		case <-lost.C:
			cause := "no answer"
			if lastErr != nil {
				cause = lastErr.Error()
			}
			s.lose(fmt.Errorf("redis session %s: %w: not renewed within %s (last error: %s)", s.id, coord.ErrSessionExpired, grace, cause))
			return
		case <-next.C:
			inflight = true
			go func(dl time.Time) {
				ctx, cancel := context.WithDeadline(s.ctx, dl)
				defer cancel()
				args, dropped := s.renewArgs()
				r := renewal{sent: time.Now(), dropped: dropped}
				r.res, r.err = scriptRenew.Run(ctx, s.c.rdb, []string{s.key, s.owned}, args...).Slice()
				results <- r
			}(deadline)
		case r := <-results:
			inflight = false
			if r.err != nil || len(r.res) == 0 {
				if r.err == nil {
					r.err = errors.New("empty reply to renew")
				}
				lastErr = r.err
				next.Reset(retry)
				continue
			}
			if n, _ := r.res[0].(int64); n != 1 {
				s.lose(fmt.Errorf("redis session %s: %w: the server no longer has it", s.id, coord.ErrSessionExpired))
				return
			}
			lastErr = nil
			s.forget(r.dropped)
			deadline = r.sent.Add(grace)
			lost.Reset(time.Until(deadline))
			for _, w := range r.res[1:] {
				if wid, ok := w.(string); ok {
					s.lostHeld(wid)
				}
			}
			next.Reset(interval)
		}
	}
}

// lose ends the session as lost, then (best effort, unless Close interrupts)
// removes what it still owns on the server so that waiters need not wait for
// the keys to expire.
func (s *session) lose(err error) {
	if !s.end(err) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, min(s.ttl, 2*time.Second))
	defer cancel()
	_ = s.c.kill(ctx, s.id)
}

// kill runs the kill script for session id (see lua/kill.lua) and reports
// whether the session key existed.
func (c *client) killScript(ctx context.Context, id string) (bool, error) {
	n, err := scriptKill.Run(ctx, c.rdb, []string{c.sessionKey(id), c.ownedKey(id)}, id, c.sessionPrefix()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, c.errUnavailable(fmt.Errorf("end session %s: %w", id, err))
	}
	return n == 1, nil
}

func (c *client) kill(ctx context.Context, id string) error {
	_, err := c.killScript(ctx, id)
	return err
}
