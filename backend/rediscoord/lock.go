package rediscoord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
)

// cleanupTimeout bounds the script that removes a failed Lock call's state.
const cleanupTimeout = 2 * time.Second

// held is a lock acquired by Lock.
type held struct {
	*driver.Ownership
	c     *client
	s     *session
	base  string
	owner string // "SID:WID", the lock key's value
	wid   string
	token uint64
}

var _ driver.Held = (*held)(nil)

// Lock acquires name for session ds (which must come from this client).
//
// Guarantees: at most one live session holds name; the token is the lock's
// fencing counter, incremented in the same script that takes the lock, so it
// is strictly greater for each successive holder — as long as the Redis
// primary keeps its data (an asynchronous failover can move it back).
// Waiters are served in FIFO order and each is woken only by its
// predecessor's release (or the expiry of a dead holder's key). With
// opts.Try, Lock returns coord.ErrLocked when the lock is held or has waiters.
// On every error (ctx done, session lost, Redis unreachable) the call's
// contender state is removed before Lock returns.
func (c *client) Lock(ctx context.Context, ds driver.Session, name string, opts driver.LockOptions) (driver.Held, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("redis: the session does not belong to this client")
	}
	wid := randomID(8)
	w := &waiter{c: c, s: s, base: c.lockBase(name), wid: wid, owner: s.id + ":" + wid, try: opts.Try}
	h, err := w.run(ctx)
	if err != nil {
		if !errors.Is(err, coord.ErrLocked) { // a failed TryLock created nothing
			w.cleanup(ctx)
		}
		return nil, err
	}
	return h, nil
}

// waiter is one Lock call's state.
type waiter struct {
	c     *client
	s     *session
	base  string
	wid   string
	owner string
	try   bool

	interruptOnce sync.Once
	stop          chan struct{}
	wg            sync.WaitGroup
}

// run tries to acquire, waiting for wake-ups between attempts, until it holds
// the lock or must give up.
func (w *waiter) run(ctx context.Context) (*held, error) {
	backoff := 20 * time.Millisecond
	defer w.stopInterrupter()
	for {
		if err := w.s.Err(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("redis lock %s: %w", w.base, err)
		}
		res, err := scriptAcquire.Run(ctx, w.c.rdb,
			[]string{w.base, w.s.key, w.s.owned},
			w.owner, w.wid, w.s.ttl.Milliseconds(), boolArg(w.try), w.c.sessionPrefix()).Slice()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("redis lock %s: %w", w.base, cerr)
			}
			if w.try {
				return nil, w.c.errUnavailable(fmt.Errorf("acquire: %w", err))
			}
			// The outcome is unknown; the script is safe to repeat (it
			// returns our own lock, or keeps our one place in line).
			if serr := w.sleep(ctx, backoff); serr != nil {
				return nil, serr
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		if len(res) == 0 {
			return nil, fmt.Errorf("redis %s: empty reply to acquire %s: %w", w.c.addr, w.base, coord.ErrCorrupt)
		}
		backoff = 20 * time.Millisecond
		status, _ := res[0].(int64)
		switch status {
		case 1:
			return w.took(res)
		case -1:
			err := fmt.Errorf("redis session %s: %w: the server no longer has it", w.s.id, coord.ErrSessionExpired)
			w.s.lose(err)
			return nil, w.s.Err()
		}
		if w.try {
			return nil, coord.ErrLocked
		}
		pttl := int64(-1)
		if len(res) > 1 {
			pttl, _ = res[1].(int64)
		}
		w.startInterrupter(ctx)
		if err := w.wait(ctx, w.recheckAfter(pttl)); err != nil {
			if serr := w.sleep(ctx, backoff); serr != nil {
				return nil, serr
			}
			backoff = min(2*backoff, time.Second)
		}
	}
}

// took builds the held lock from the acquire script's {1, token} reply.
func (w *waiter) took(res []any) (*held, error) {
	var tok uint64
	err := errors.New("no token in the reply")
	if len(res) > 1 {
		switch v := res[1].(type) {
		case string:
			tok, err = strconv.ParseUint(v, 10, 64)
		default:
			err = fmt.Errorf("token has type %T", v)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("redis %s: fencing counter %s:fence: %v: %w", w.c.addr, w.base, err, coord.ErrCorrupt)
	}
	h := &held{Ownership: driver.NewOwnership(), c: w.c, s: w.s, base: w.base, owner: w.owner, wid: w.wid, token: tok}
	if !w.s.addHeld(h.wid, h) {
		return nil, w.s.Err()
	}
	return h, nil
}

// recheckAfter is how long a waiter blocks before it re-runs the acquire
// script without a wake-up: just after the holder's key would expire (the
// holder may have died without releasing), and never longer than one TTL.
func (w *waiter) recheckAfter(pttl int64) time.Duration {
	d := w.s.ttl
	if pttl > 0 {
		d = min(d, time.Duration(pttl)*time.Millisecond+20*time.Millisecond)
	}
	return d
}

// wait blocks in BLPOP on the waiter's wake-up list for at most d. A release
// of the predecessor, the interrupter (ctx done or session lost) or the
// timeout ends it.
func (w *waiter) wait(ctx context.Context, d time.Duration) error {
	// The reply to a BLPOP that timed out on the server is due at once; a
	// server that does not send it within the margin is treated as gone.
	margin := min(max(w.s.ttl/2, 200*time.Millisecond), 2*time.Second)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d+margin)
	defer cancel()
	secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	err := w.c.blk.Do(bctx, "BLPOP", wakeKey(w.base, w.wid), secs).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// sleep waits d, or until ctx is done or the session ends.
func (w *waiter) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis %s: %w", w.base, ctx.Err())
	case <-w.s.done:
		return w.s.Err()
	}
}

// startInterrupter starts (once) a goroutine that, when ctx is done or the
// session ends, pushes to the waiter's wake-up list so that a BLPOP in
// progress returns at once.
func (w *waiter) startInterrupter(ctx context.Context) {
	w.interruptOnce.Do(func() {
		w.stop = make(chan struct{})
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
			case <-w.s.done:
			}
			ictx, cancel := context.WithTimeout(context.Background(), min(time.Second, w.s.ttl/2))
			defer cancel()
			key := wakeKey(w.base, w.wid)
			_, _ = w.c.rdb.TxPipelined(ictx, func(p redis.Pipeliner) error {
				p.RPush(ictx, key, "interrupt")
				p.PExpire(ictx, key, w.s.ttl)
				return nil
			})
		}()
	})
}

func (w *waiter) stopInterrupter() {
	if w.stop != nil {
		close(w.stop)
		w.wg.Wait()
	}
}

// cleanup removes every trace of the call on the server (held lock, place in
// line, wake-up list) and passes a wake-up it may have consumed on to the next
// waiter. It runs after a failure, detached from ctx's cancellation. When it
// cannot reach Redis, the session's next renewal does it (or, if the session
// is lost, the entries die with it and the next release skips them).
func (w *waiter) cleanup(ctx context.Context) {
	timeout := cleanupTimeout
	if w.s.Err() != nil {
		// The entries die with the session anyway; don't hold the caller
		// long if Redis is what failed.
		timeout = min(timeout, w.s.ttl/2)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := scriptCancel.Run(cctx, w.c.rdb, []string{w.base, w.s.owned}, w.owner, w.wid, w.c.sessionPrefix()).Err(); err != nil && !errors.Is(err, redis.Nil) {
		w.s.abandon(w.wid, w.base)
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// endLost ends the lock as lost because of cause (its session ended, or its
// key was taken).
func (h *held) endLost(cause error) { h.End(coord.Lost(cause)) }

// Token is the lock's fencing counter value taken with this acquisition.
func (h *held) Token() uint64 { return h.token }

// Release deletes the lock key if this holding still owns it (compare and
// delete in one script) and wakes the next live waiter. It returns an error
// wrapping coord.ErrNotHeld when the holding had already ended, or when the
// key was gone or owned by someone else (the holding then ends as lost). If
// Redis cannot be reached the error wraps coord.ErrUnavailable and the
// holding stays live, so Release can be retried.
func (h *held) Release(ctx context.Context) error {
	if err := h.Err(); err != nil {
		return fmt.Errorf("redis lock %s: %w (ended: %v)", h.base, coord.ErrNotHeld, err)
	}
	n, err := scriptRelease.Run(ctx, h.c.rdb, []string{h.base, h.s.owned}, h.owner, h.wid, h.c.sessionPrefix()).Int64()
	if err != nil {
		return h.c.errUnavailable(fmt.Errorf("release %s: %w", h.base, err))
	}
	h.s.removeHeld(h.wid)
	if n != 1 {
		h.End(coord.Lost(fmt.Errorf("redis lock key %s was deleted or overwritten by someone else", h.base)))
		return fmt.Errorf("redis lock %s: %w: the key no longer names this holder", h.base, coord.ErrNotHeld)
	}
	// If the session ended while the script ran, the holding already ended
	// as lost; the release still happened on the server.
	h.End(coord.ErrNotHeld)
	return nil
}
