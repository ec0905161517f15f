package consulcoord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// The election, read-write lock and semaphore share the lock's queue shape:
// one key per call, acquired with the session (so Consul deletes it when the
// session ends), ordered by CreateIndex. Unlike the lock's keys, whose value
// holds the owner's lock-delay, their keys carry the lock-delay in
// milliseconds in the KV flags, leaving the value to the recipe (an election
// candidate's value).

// sessionOf returns ds as this client's live session.
func (c *client) sessionOf(ds driver.Session) (*session, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, errors.New("consul: the session was not opened by this client")
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// contend runs one queued call of a recipe for session ds: it makes the
// call's own key "<prefix><session>-<nonce><suffix>", runs fn with a context
// that is also cancelled when the session ends, and on every error removes
// the key (with a fresh context) and reports, in this order, ErrLocked, the
// caller's ctx error, the session's error, or fn's error.
func contend[T any](ctx context.Context, c *client, ds driver.Session, what, prefix, suffix string,
	fn func(ctx context.Context, s *session, key string) (T, error)) (T, error) {
	var zero T
	s, err := c.sessionOf(ds)
	if err != nil {
		return zero, err
	}
	key := prefix + s.id + "-" + nonce() + suffix
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	v, err := fn(lctx, s, key)
	if err == nil {
		return v, nil
	}
	c.removeKey(ctx, s, key)
	switch {
	case errors.Is(err, coord.ErrLocked):
		return zero, err
	case ctx.Err() != nil:
		return zero, fmt.Errorf("consul: %s: %w", what, ctx.Err())
	case s.Err() != nil:
		return zero, fmt.Errorf("consul: %s: %w", what, s.Err())
	}
	return zero, err
}

// delayFlags is the KV flags value recording s's lock-delay.
func delayFlags(s *session) uint64 { return uint64(s.lockDelay.Milliseconds()) }

// enqueue acquires key with s (value and lock-delay flags) and lists prefix,
// in one transaction. It returns the own entry and the listing; the own
// entry's ModifyIndex is also a valid blocking index for the listing.
func (c *client) enqueue(ctx context.Context, s *session, prefix, key string, value []byte) (contender, []*api.KVPair, error) {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: value, Flags: delayFlags(s), Session: s.id}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: prefix}},
	}
	ok, resp, _, err := c.cli.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return contender{}, nil, c.failed("queue transaction", err)
	}
	if !ok {
		return contender{}, nil, c.rejected(ctx, s, resp)
	}
	if len(resp.Results) == 0 || resp.Results[0].KV == nil {
		return contender{}, nil, fmt.Errorf("consul %s: queue transaction: no result for %s: %w", c.desc, key, coord.ErrCorrupt)
	}
	r := resp.Results[0].KV
	own := contender{key: key, session: s.id, create: r.CreateIndex, modify: r.ModifyIndex, lockDelay: s.lockDelay, value: value}
	pairs := make([]*api.KVPair, 0, len(resp.Results)-1)
	for _, r := range resp.Results[1:] {
		pairs = append(pairs, r.KV)
	}
	return own, pairs, nil
}

// parseEntries keeps the recipe's own entries under prefix (lock-delay from
// the flags, value kept) and orders them by CreateIndex. An entry that no
// session holds was not written by coord.
func parseEntries(prefix string, pairs []*api.KVPair) ([]contender, error) {
	var cs []contender
	for _, p := range directChildren(prefix, pairs) {
		if p.Session == "" {
			return nil, fmt.Errorf("consul: %s is held by no session (not written by coord): %w", p.Key, coord.ErrCorrupt)
		}
		if p.Flags > uint64(maxLockDelay.Milliseconds()) {
			return nil, fmt.Errorf("consul: %s: flags %d are not a lock-delay in ms: %w", p.Key, p.Flags, coord.ErrCorrupt)
		}
		cs = append(cs, contender{
			key: p.Key, session: p.Session, create: p.CreateIndex, modify: p.ModifyIndex,
			lockDelay: msDuration(p.Flags), value: p.Value,
		})
	}
	sortByCreate(cs)
	return cs, nil
}

func msDuration(ms uint64) time.Duration { return time.Duration(ms) * time.Millisecond }

// listIndexed reads prefix, retrying failures until ctx is done, and returns
// the listing with its blocking index.
func (c *client) listIndexed(ctx context.Context, prefix string) ([]*api.KVPair, uint64, error) {
	return c.watchPrefix(ctx, prefix, 0)
}

// watchPrefix lists prefix with a blocking query that returns once anything
// under it changed after index (or at once for index 0), retrying transient
// failures until ctx is done. It returns the listing and the next index
// (reset to 0 when the server's index went backwards). A refusal (403, ...)
// is returned at once.
func (c *client) watchPrefix(ctx context.Context, prefix string, index uint64) ([]*api.KVPair, uint64, error) {
	b := backoff{}
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(ctx)
		pairs, meta, err := c.cli.KV().List(prefix, q)
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if err != nil {
			if refused(err) {
				return nil, 0, c.failed("list "+prefix, err)
			}
			if !b.sleep(ctx) {
				return nil, 0, ctx.Err()
			}
			continue
		}
		next := nextIndex(index, meta.LastIndex)
		if meta.LastIndex == 0 {
			next = 1 // never a non-blocking query in a loop
		}
		return pairs, next, nil
	}
}

// waitChanged blocks until p's key is deleted, replaced or modified (see
// waitKey).
func (c *client) waitChanged(ctx context.Context, p contender) error {
	return c.waitKey(ctx, p, true)
}

// rewrite sets the value of own (an entry of s) with a compare-and-set on
// its ModifyIndex, keeping it acquired by s, and returns the new
// ModifyIndex. ok is false when the key was deleted or changed meanwhile.
func (c *client) rewrite(ctx context.Context, s *session, own contender, value []byte) (modify uint64, ok bool, err error) {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: own.key, Index: own.modify}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: own.key, Value: value, Flags: delayFlags(s), Session: s.id}},
	}
	ok, resp, _, err := c.cli.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, false, c.failed("update "+own.key, err)
	}
	if !ok {
		return 0, false, nil
	}
	// The lock's result comes last (a check may or may not add one).
	if len(resp.Results) == 0 || resp.Results[len(resp.Results)-1].KV == nil {
		return 0, false, fmt.Errorf("consul %s: update %s: no result: %w", c.desc, own.key, coord.ErrCorrupt)
	}
	return resp.Results[len(resp.Results)-1].KV.ModifyIndex, true, nil
}

// lossCause explains why an entry of s is gone: the session's loss (asking
// the server when the session still looks live) or a deletion by someone
// else.
func (c *client) lossCause(ctx context.Context, s *session, key string) error {
	if err := s.Err(); err != nil {
		return err
	}
	if info, _, err := c.cli.Session().Info(s.id, (&api.QueryOptions{}).WithContext(ctx)); err == nil && info == nil {
		s.lose("invalidated by the server")
		return s.Err()
	}
	return fmt.Errorf("consul: %s was deleted or changed by someone else", key)
}
