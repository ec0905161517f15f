package consulcoord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// contender is one entry of a lock's queue: a key acquired by a session.
type contender struct {
	key       string
	session   string
	create    uint64 // CreateIndex: the queue order and the fencing token
	modify    uint64
	lockDelay time.Duration // the owning session's lock-delay
	value     []byte        // an election candidate's value
}

// Lock acquires name for session s with a fair queue: each call acquires its
// own key "<root>/lock/<name>/<session>-<nonce>" with the session (so Consul
// deletes it when the session ends), together with a listing of the queue, in
// one /v1/txn request. Contenders are ordered by CreateIndex; the first one
// holds the lock. A waiter watches only its predecessor's key with a blocking
// query and lists the queue again when that key is gone: one HTTP request for
// an uncontended lock, no polling, no herd, FIFO order. The token is the own
// key's CreateIndex.
//
// Lock-delay: Consul applies a session's lock-delay per key, and nobody ever
// acquires another contender's key, so Consul's own lock-delay never delays a
// coord lock. coord emulates it for waiters instead: a waiter that saw its
// predecessor's key go away and finds itself first checks whether the
// predecessor's session still exists; if it was invalidated (expired or
// destroyed) the waiter waits that session's lock-delay before it reports
// the lock acquired. Limits: a contender that arrives after the dead holder's
// key is already gone acquires at once, and a holder that released and then
// closed its session quickly may cost its successor the delay.
//
// Reads use Consul's default consistency mode (answered by the leader without
// a quorum check), so around a leader change they may be stale. That is safe
// here: keys ahead of a contender are only ever removed and new keys always
// queue behind it, so a stale view can only show more predecessors, never
// fewer.
func (c *client) Lock(ctx context.Context, ds driver.Session, name string, o driver.LockOptions) (driver.Held, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, errors.New("consul: the session was not opened by this client")
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	prefix := c.recipePrefix("lock", name)
	key := prefix + s.id + "-" + nonce()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	h, err := c.acquire(lctx, s, prefix, key, o)
	if err == nil {
		return h, nil
	}
	c.removeKey(ctx, s, key)
	switch {
	case errors.Is(err, coord.ErrLocked):
		return nil, err
	case ctx.Err() != nil:
		return nil, fmt.Errorf("consul: lock %s: %w", name, ctx.Err())
	case s.Err() != nil:
		return nil, fmt.Errorf("consul: lock %s: %w", name, s.Err())
	}
	return nil, err
}

func (c *client) acquire(ctx context.Context, s *session, prefix, key string, o driver.LockOptions) (*held, error) {
	var value []byte
	if s.lockDelay > 0 {
		value = []byte(strconv.FormatInt(s.lockDelay.Milliseconds(), 10))
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: value, Session: s.id}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: prefix}},
	}
	ok, resp, _, err := c.cli.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, c.failed("lock transaction", err)
	}
	if !ok {
		return nil, c.rejected(ctx, s, resp)
	}
	if len(resp.Results) == 0 || resp.Results[0].KV == nil {
		return nil, fmt.Errorf("consul %s: lock transaction: no result for %s: %w", c.desc, key, coord.ErrCorrupt)
	}
	own := resp.Results[0].KV.CreateIndex
	pairs := make([]*api.KVPair, 0, len(resp.Results)-1)
	for _, r := range resp.Results[1:] {
		pairs = append(pairs, r.KV)
	}
	var gone *contender // the predecessor whose key we last saw go away
	for {
		cs, err := parseContenders(prefix, pairs)
		if err != nil {
			return nil, err
		}
		pos := position(cs, key, own)
		if pos < 0 {
			return nil, c.ownKeyGone(ctx, s, key)
		}
		if pos == 0 {
			if gone != nil {
				if err := c.lockDelayWait(ctx, *gone); err != nil {
					return nil, err
				}
			}
			return c.newHeld(s, cs[0]), nil
		}
		if o.Try {
			return nil, coord.ErrLocked
		}
		pred := cs[pos-1]
		if err := c.waitGone(ctx, pred); err != nil {
			return nil, err
		}
		gone = &pred
		if pairs, err = c.list(ctx, prefix); err != nil {
			return nil, err
		}
	}
}

// position returns the index of our key (with our CreateIndex) in cs, or -1.
func position(cs []contender, key string, create uint64) int {
	for i, ct := range cs {
		if ct.key == key && ct.create == create {
			return i
		}
	}
	return -1
}

// parseContenders keeps the lock's own entries and orders them by
// CreateIndex. An entry that no session holds was not written by coord.
func parseContenders(prefix string, pairs []*api.KVPair) ([]contender, error) {
	var cs []contender
	for _, p := range directChildren(prefix, pairs) {
		if p.Session == "" {
			return nil, fmt.Errorf("consul: %s is held by no session (not written by coord): %w", p.Key, coord.ErrCorrupt)
		}
		ct := contender{key: p.Key, session: p.Session, create: p.CreateIndex, modify: p.ModifyIndex}
		if len(p.Value) > 0 {
			ms, err := strconv.ParseInt(string(p.Value), 10, 64)
			if err != nil || ms < 0 {
				return nil, fmt.Errorf("consul: %s: value %.32q is not a lock-delay in ms: %w", p.Key, p.Value, coord.ErrCorrupt)
			}
			ct.lockDelay = time.Duration(ms) * time.Millisecond
		}
		cs = append(cs, ct)
	}
	sortByCreate(cs)
	return cs, nil
}

// sortByCreate orders contenders by CreateIndex (queue order), then key.
func sortByCreate(cs []contender) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].create != cs[j].create {
			return cs[i].create < cs[j].create
		}
		return cs[i].key < cs[j].key
	})
}

// waitGone blocks until p's key is deleted (or replaced), with blocking
// queries on that key only. Failed queries are retried (a read is safe to
// repeat) until ctx is done, which happens when the session is lost.
func (c *client) waitGone(ctx context.Context, p contender) error {
	return c.waitKey(ctx, p, false)
}

// waitKey blocks until p's key is deleted or replaced (or, with modified,
// also rewritten), with blocking queries on that key only, retrying failures
// until ctx is done.
func (c *client) waitKey(ctx context.Context, p contender, modified bool) error {
	index := p.modify
	b := backoff{}
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(ctx)
		kv, meta, err := c.cli.KV().Get(p.key, q)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if !b.sleep(ctx) {
				return ctx.Err()
			}
			continue
		}
		b.reset()
		if kv == nil || kv.CreateIndex != p.create || (modified && kv.ModifyIndex != p.modify) {
			return nil
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// list reads the lock's queue, retrying failures until ctx is done.
func (c *client) list(ctx context.Context, prefix string) ([]*api.KVPair, error) {
	b := backoff{}
	for {
		pairs, _, err := c.cli.KV().List(prefix, (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			return pairs, nil
		}
		if !b.sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// lockDelayWait waits p's lock-delay if p's session was invalidated.
func (c *client) lockDelayWait(ctx context.Context, p contender) error {
	if p.lockDelay <= 0 {
		return nil
	}
	info, _, err := c.cli.Session().Info(p.session, (&api.QueryOptions{}).WithContext(ctx))
	if err == nil && info != nil {
		return nil // released, not invalidated
	}
	if !sleepCtx(ctx, p.lockDelay) {
		return ctx.Err()
	}
	return nil
}

// rejected explains a rolled-back lock transaction. The usual cause is a
// session the server has already invalidated: then the session is lost.
func (c *client) rejected(ctx context.Context, s *session, resp *api.TxnResponse) error {
	var whats []string
	if resp != nil {
		for _, e := range resp.Errors {
			whats = append(whats, e.What)
		}
	}
	msg := strings.Join(whats, "; ")
	if info, _, err := c.cli.Session().Info(s.id, (&api.QueryOptions{}).WithContext(ctx)); err == nil && info == nil {
		s.lose("the server rejected a lock with it: " + msg)
		return s.Err()
	}
	return fmt.Errorf("consul %s: lock transaction rejected: %s", c.desc, msg)
}

// ownKeyGone explains why our contender key disappeared while we waited.
func (c *client) ownKeyGone(ctx context.Context, s *session, key string) error {
	if info, _, err := c.cli.Session().Info(s.id, (&api.QueryOptions{}).WithContext(ctx)); err == nil && info == nil {
		s.lose("invalidated by the server while a lock waited")
		return s.Err()
	}
	return fmt.Errorf("consul: contender key %s was deleted by someone else while waiting: %w", key, coord.ErrLockLost)
}

// removeKey deletes a contender key on a failure path, with a fresh context:
// the caller's may be cancelled. If that fails while the session lives, the
// session keeps retrying in the background, so a phantom contender cannot
// block the queue; once the session ends, Consul deletes the key itself.
func (c *client) removeKey(ctx context.Context, s *session, key string) {
	timeout := 5 * time.Second
	if s.Err() != nil {
		timeout = 2 * time.Second
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if _, err := c.cli.KV().Delete(key, (&api.WriteOptions{}).WithContext(cctx)); err != nil {
		s.background(func(ctx context.Context) {
			b := backoff{}
			for b.sleep(ctx) {
				if _, err := c.cli.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err == nil {
					return
				}
			}
		})
	}
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// backoff paces retries of failed reads: 50ms doubling up to 1s.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) sleep(ctx context.Context) bool {
	switch {
	case b.d == 0:
		b.d = 50 * time.Millisecond
	case b.d < time.Second:
		b.d *= 2
	}
	return sleepCtx(ctx, b.d)
}
