package rediscoord

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
)

// The queue recipes (election, read-write lock, semaphore) share one shape,
// kept by lua/recipes.lua: a sorted set of contender entries "SID:WID" in
// arrival order (the score, from a per-name counter, is the entry's token),
// an entry being live while its session key exists. Whether an entry holds
// depends on the entries ahead of it; each waiting entry blocks in BLPOP on
// its own wake-up list, which the script that removes the entry it waits on
// pushes to. A waiter also re-checks when the session of an entry ahead of
// it could have expired without a script noticing (the smallest session
// PTTL ahead of it, at most one TTL): a safety net, not the normal path.
const (
	kindElection  = 'e'
	kindRWLock    = 'r'
	kindSemaphore = 's'
)

// qBase is the key prefix of a queue recipe's name (see lua/recipes.lua).
func (c *client) qBase(kind byte, name string) string {
	switch kind {
	case kindElection:
		return c.ns + ":election:{" + name + "}"
	case kindRWLock:
		return c.ns + ":rwlock:{" + name + "}"
	default:
		return c.ns + ":sem:{" + name + "}"
	}
}

// qcall is one Campaign, RWLock or Acquire call.
type qcall struct {
	w     *waiter // wake-up list and blocking helpers (base, wid, owner = entry)
	kind  byte
	info  string // election value; rwlock mode "r" or "w"
	limit int
}

// qheld is a holding of a queue recipe: a term, a read or write lock, a permit.
type qheld struct {
	*driver.Ownership
	c     *client
	s     *session
	kind  byte
	base  string
	entry string
	wid   string
	token uint64
	lost  func(error) error // coord.Lost or coord.LostLeadership
}

var _ driver.Held = (*qheld)(nil)

// enqueue runs a queue call for session ds until it holds or fails; on
// every failure but a failed try it removes the call's entry.
func (c *client) enqueue(ctx context.Context, ds driver.Session, kind byte, name, info string, limit int, try bool) (*qheld, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("redis: the session does not belong to this client")
	}
	wid := randomID(8)
	q := &qcall{
		w:    &waiter{c: c, s: s, base: c.qBase(kind, name), wid: wid, owner: s.id + ":" + wid, try: try},
		kind: kind, info: info, limit: limit,
	}
	h, err := q.run(ctx)
	if err != nil {
		if !errors.Is(err, coord.ErrLocked) {
			q.cleanup(ctx)
		}
		return nil, err
	}
	return h, nil
}

// run queues the entry and waits for wake-ups until it holds or must give up.
func (q *qcall) run(ctx context.Context) (*qheld, error) {
	w := q.w
	backoff := minBackoff
	defer w.stopInterrupter()
	for {
		if err := w.s.Err(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("redis %s: %w", w.base, err)
		}
		res, err := scriptQAcquire.Run(ctx, w.c.rdb, []string{w.base, w.s.key, w.s.owned},
			string(q.kind), w.owner, w.wid, q.info, q.limit, boolArg(w.try), w.c.sessionPrefix()).Slice()
		if err == nil && len(res) == 0 {
			err = errors.New("empty reply")
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("redis %s: %w", w.base, cerr)
			}
			if w.try {
				return nil, w.c.errUnavailable(fmt.Errorf("acquire %s: %w", w.base, err))
			}
			// The script is safe to repeat: it keeps the entry's one place.
			if serr := w.sleep(ctx, backoff); serr != nil {
				return nil, serr
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		status, _ := res[0].(int64)
		switch status {
		case 1:
			return q.took(res)
		case -1:
			w.s.lose(fmt.Errorf("redis session %s: %w: the server no longer has it", w.s.id, coord.ErrSessionExpired))
			return nil, w.s.Err()
		case 2:
			return nil, coord.ErrLocked
		}
		pt := int64(-1)
		if len(res) > 1 {
			pt, _ = res[1].(int64)
		}
		w.startInterrupter(ctx)
		if err := w.wait(ctx, w.recheckAfter(pt)); err != nil {
			if serr := w.sleep(ctx, backoff); serr != nil {
				return nil, serr
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// took builds the holding from the acquire script's {1, token} reply.
func (q *qcall) took(res []any) (*qheld, error) {
	w := q.w
	var tok uint64
	err := errors.New("no token in the reply")
	if len(res) > 1 {
		if v, ok := res[1].(string); ok {
			tok, err = parseScore(v)
		} else {
			err = fmt.Errorf("token has type %T", res[1])
		}
	}
	if err != nil {
		return nil, fmt.Errorf("redis %s: sequence of %s: %v: %w", w.c.addr, w.base, err, coord.ErrCorrupt)
	}
	lost := coord.Lost
	if q.kind == kindElection {
		lost = coord.LostLeadership
	}
	h := &qheld{Ownership: driver.NewOwnership(), c: w.c, s: w.s, kind: q.kind, base: w.base,
		entry: w.owner, wid: w.wid, token: tok, lost: lost}
	if !w.s.addHeld(h.wid, h) {
		return nil, w.s.Err()
	}
	return h, nil
}

// cleanup removes the call's entry (waking whoever waited on it), detached
// from ctx's cancellation; if Redis cannot be reached, the session's next
// renewal does it (or the entry dies with its session).
func (q *qcall) cleanup(ctx context.Context) {
	w := q.w
	timeout := cleanupTimeout
	if w.s.Err() != nil {
		timeout = min(timeout, w.s.ttl/2)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := scriptQRelease.Run(cctx, w.c.rdb, []string{w.base, w.s.owned},
		string(q.kind), w.owner, w.wid, w.c.sessionPrefix()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		w.s.abandonOwned(w.wid, string(q.kind)+" "+w.wid+" "+w.base)
	}
}

// parseScore parses a sorted-set score that holds a whole number.
func parseScore(v string) (uint64, error) {
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || f != float64(uint64(f)) {
		return 0, fmt.Errorf("score %q is not a positive whole number", v)
	}
	return uint64(f), nil
}

// endLost ends the holding as lost because of cause.
func (h *qheld) endLost(cause error) { h.End(h.lost(cause)) }

// Token is the entry's sequence number, taken when the call queued: greater
// than the token of every entry queued before it.
func (h *qheld) Token() uint64 { return h.token }

// Release removes the entry if it is still there (one script, which also
// wakes whoever waited on it) and ends the holding with coord.ErrNotHeld
// once the server confirmed it. It returns an error wrapping
// coord.ErrNotHeld when the holding had already ended or its entry was gone
// (the holding then ends as lost). If Redis cannot be reached the error
// wraps coord.ErrUnavailable and the holding stays live: retry, or close the
// session.
func (h *qheld) Release(ctx context.Context) error {
	if err := h.Err(); err != nil {
		return fmt.Errorf("redis %s: %w (ended: %v)", h.base, coord.ErrNotHeld, err)
	}
	n, err := scriptQRelease.Run(ctx, h.c.rdb, []string{h.base, h.s.owned},
		string(h.kind), h.entry, h.wid, h.c.sessionPrefix()).Int64()
	if err != nil {
		return h.c.errUnavailable(fmt.Errorf("release %s: %w", h.base, err))
	}
	h.s.removeHeld(h.wid)
	if n != 1 {
		h.End(h.lost(fmt.Errorf("redis %s: the entry was deleted by someone else", h.base)))
		return fmt.Errorf("redis %s: %w: the entry is gone", h.base, coord.ErrNotHeld)
	}
	h.End(coord.ErrNotHeld)
	return nil
}
