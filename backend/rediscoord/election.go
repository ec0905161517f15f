package rediscoord

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Backoff bounds of retried script calls.
const (
	minBackoff = 20 * time.Millisecond
	maxBackoff = time.Second
)

var _ driver.Elector = (*client)(nil)

// term is a leadership won by Campaign.
type term struct {
	*qheld
	mu    sync.Mutex
	value []byte
}

var _ driver.Term = (*term)(nil)

// Campaign queues a candidacy "SID:WID" (unique per call) for name with
// value and blocks until it is the first live candidacy.
//
// Guarantees: the leader is the head of the candidacy queue, so at most one
// live session leads at a time — as long as the Redis primary keeps its data
// (an asynchronous failover can lose the queue and elect a second leader).
// Leadership is claimed only when the acquire script finds this call's own
// entry at the head. Candidates are served in FIFO order; each waits only for
// its predecessor (its removal pushes to this call's wake-up list), and
// re-checks on its own only when a candidacy ahead could have expired
// unnoticed. The token is the candidacy's sequence number, so each new term
// has a greater token. On every error the candidacy is removed before
// Campaign returns.
func (c *client) Campaign(ctx context.Context, ds driver.Session, name string, value []byte) (driver.Term, error) {
	h, err := c.enqueue(ctx, ds, kindElection, name, string(value), 1, false)
	if err != nil {
		return nil, err
	}
	return &term{qheld: h, value: bytes.Clone(value)}, nil
}

// Value returns the latest value this term proclaimed.
func (t *term) Value() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.value)
}

// Proclaim sets the candidacy's value if it still exists and leads (one
// script, which also notifies observers). It fails with an error wrapping
// coord.ErrNotLeader when the term has ended or its candidacy is gone (the
// term then ends as lost), and with coord.ErrUnavailable when Redis cannot
// be reached (the value is then unknown until a later Proclaim succeeds).
func (t *term) Proclaim(ctx context.Context, value []byte) error {
	if err := t.Err(); err != nil {
		return fmt.Errorf("redis %s: %w (ended: %v)", t.base, coord.ErrNotLeader, err)
	}
	n, err := scriptProclaim.Run(ctx, t.c.rdb, []string{t.base}, t.entry, string(value)).Int64()
	if err != nil {
		return t.c.errUnavailable(fmt.Errorf("proclaim %s: %w", t.base, err))
	}
	if n != 1 {
		t.s.removeHeld(t.wid)
		t.End(coord.LostLeadership(fmt.Errorf("redis %s: the candidacy was deleted by someone else", t.base)))
		return fmt.Errorf("redis %s: %w: the candidacy is gone", t.base, coord.ErrNotLeader)
	}
	t.mu.Lock()
	t.value = bytes.Clone(value)
	t.mu.Unlock()
	return nil
}

// Leader returns the first live candidacy of name (removing dead ones ahead
// of it), or an error wrapping coord.ErrNoLeader when there is none.
func (c *client) Leader(ctx context.Context, name string) (driver.LeaderInfo, error) {
	li, _, err := c.readLeader(ctx, c.qBase(kindElection, name))
	if err != nil {
		return driver.LeaderInfo{}, err
	}
	if li.Token == 0 {
		return driver.LeaderInfo{}, fmt.Errorf("redis election %s: %w", name, coord.ErrNoLeader)
	}
	return li, nil
}

// readLeader returns the leader of the election at base (a zero LeaderInfo
// when none) and the PTTL of its session.
func (c *client) readLeader(ctx context.Context, base string) (driver.LeaderInfo, time.Duration, error) {
	res, err := scriptLeader.Run(ctx, c.rdb, []string{base}, c.sessionPrefix()).Slice()
	if err != nil {
		return driver.LeaderInfo{}, 0, c.errUnavailable(fmt.Errorf("leader of %s: %w", base, err))
	}
	if len(res) == 0 {
		return driver.LeaderInfo{}, 0, nil
	}
	if len(res) != 3 {
		return driver.LeaderInfo{}, 0, fmt.Errorf("redis %s: leader of %s: %d fields in the reply: %w", c.addr, base, len(res), coord.ErrCorrupt)
	}
	score, _ := res[0].(string)
	tok, err := parseScore(score)
	if err != nil {
		return driver.LeaderInfo{}, 0, fmt.Errorf("redis %s: leader of %s: %v: %w", c.addr, base, err, coord.ErrCorrupt)
	}
	value, _ := res[1].(string)
	pt, _ := res[2].(int64)
	return driver.LeaderInfo{Token: tok, Value: []byte(value)}, time.Duration(pt) * time.Millisecond, nil
}

// Observe subscribes to the election's channel first, then reads the leader,
// and reads it again after every message on the channel (every script that
// changes the leader or its value publishes there) and after every
// reconnect of the subscription; it calls fn whenever the (token, value)
// pair differs from the last one delivered. As a safety net it also
// re-reads when the leader's session could have expired without a script
// noticing (and at least once per session TTL). Redis errors are retried
// with backoff until ctx is done; Observe then returns a wrapped ctx.Err().
func (c *client) Observe(ctx context.Context, name string, fn func(driver.LeaderInfo)) error {
	base := c.qBase(kindElection, name)
	var last driver.LeaderInfo
	delivered := false
	return c.follow(ctx, base+":ch", func(ctx context.Context) (bool, time.Duration, error) {
		li, pt, err := c.readLeader(ctx, base)
		if err != nil {
			return false, 0, err
		}
		if !delivered || li.Token != last.Token || !bytes.Equal(li.Value, last.Value) {
			delivered = true
			last = li
			fn(li)
		}
		wait := c.opts.TTL
		if li.Token != 0 && pt > 0 {
			wait = min(wait, pt+20*time.Millisecond)
		}
		return false, wait, nil
	})
}
