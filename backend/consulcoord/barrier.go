package consulcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Barrier keys: a raised barrier is "<root>/barrier-up/<name>"; a double
// barrier's participants are "<root>/barrier/<name>/<id>" (what Contenders
// counts for recipe "barrier") and its ready marker "<root>/barrier-ready/<name>".
// All of them are acquired with their owner's session, so Consul deletes
// them when it ends.

func (c *client) barrierKey(name string) string { return c.root + "/barrier-up/" + name }
func (c *client) readyKey(name string) string   { return c.root + "/barrier-ready/" + name }

// HoldBarrier raises barrier name: one transaction checks that its key is
// absent and acquires it with s. It fails with an error wrapping
// coord.ErrExists when the barrier is up (also when s itself raised it). If
// the answer is lost and the call is retried, the retry reports ErrExists
// although the barrier is s's. When the previous holder's session was
// invalidated with a lock-delay, Hold waits that delay out (see
// createOwned).
func (c *client) HoldBarrier(ctx context.Context, ds driver.Session, name string) error {
	s, err := c.sessionOf(ds)
	if err != nil {
		return err
	}
	return c.createOwned(ctx, s, c.barrierKey(name), "barrier "+name+" is up")
}

// createOwned creates key acquired by s if it is absent; when it is present
// it fails with an error wrapping coord.ErrExists that says what. These keys
// have fixed names, so Consul's lock-delay applies to them: after a session
// holding key was invalidated (also by Close) with a lock-delay, Consul
// refuses to lock key for that long. createOwned then retries (backoff up to
// 1s, the only timed retry of the normal path) until ctx is done.
func (c *client) createOwned(ctx context.Context, s *session, key, what string) error {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Flags: delayFlags(s), Session: s.id}},
	}
	b := backoff{}
	for {
		ok, resp, _, err := c.cli.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return c.failed("create "+key, err)
		}
		if ok {
			return nil
		}
		if resp != nil && len(resp.Errors) > 0 && resp.Errors[0].OpIndex == 0 {
			return fmt.Errorf("consul: %s: %w", what, coord.ErrExists)
		}
		if !lockDelayed(resp) {
			return c.rejected(ctx, s, resp)
		}
		if !b.sleep(ctx) {
			return fmt.Errorf("consul: create %s: waiting out a lock-delay: %w", key, ctx.Err())
		}
	}
}

// lockDelayed reports whether a transaction was refused because of a key's
// lock-delay.
func lockDelayed(resp *api.TxnResponse) bool {
	if resp == nil {
		return false
	}
	for _, e := range resp.Errors {
		if strings.Contains(e.What, "lock delay") {
			return true
		}
	}
	return false
}

// ReleaseBarrier deletes barrier name's key, whoever raised it; every
// WaitBarrier's blocking query returns at once. A barrier that is down is
// not an error.
func (c *client) ReleaseBarrier(ctx context.Context, name string) error {
	key := c.barrierKey(name)
	if _, err := c.cli.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.failed("delete "+key, err)
	}
	return nil
}

// WaitBarrier returns once barrier name's key is absent, with blocking
// queries on that key (no polling). Failed queries are retried with backoff
// until ctx is done; a refusal (403, ...) is returned.
func (c *client) WaitBarrier(ctx context.Context, name string) error {
	key := c.barrierKey(name)
	var index uint64
	for {
		kv, next, err := c.getKey(ctx, key, index)
		if ctx.Err() != nil {
			return fmt.Errorf("consul: wait for barrier %s: %w", name, ctx.Err())
		}
		if err != nil {
			return err
		}
		if kv == nil {
			return nil
		}
		index = next
	}
}

// getKey reads key with one blocking query from index (at once for 0),
// retrying transient failures until ctx is done, and returns its pair (nil
// when absent) and the next index (0 when the server's index went
// backwards).
func (c *client) getKey(ctx context.Context, key string, index uint64) (*api.KVPair, uint64, error) {
	b := backoff{}
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(ctx)
		kv, meta, err := c.cli.KV().Get(key, q)
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if err != nil {
			if refused(err) {
				return nil, 0, c.failed("read "+key, err)
			}
			if !b.sleep(ctx) {
				return nil, 0, ctx.Err()
			}
			continue
		}
		next := nextIndex(index, meta.LastIndex)
		if meta.LastIndex == 0 {
			next = 1
		}
		return kv, next, nil
	}
}

// EnterDoubleBarrier acquires the participant key "<root>/barrier/<name>/<id>"
// with s, in the transaction that also lists the participants and reads the
// ready marker. It returns at once if the marker is up; the participant that
// sees n entries raises it (acquired with its session) and returns. The others
// wait on the marker with blocking queries and count the participants again
// whenever it changes, so a marker that vanished with its creator's session
// is raised again once n participants are present. On every error the
// participant key is removed. A participant whose session ends stops counting
// (Consul deletes its key).
func (c *client) EnterDoubleBarrier(ctx context.Context, ds driver.Session, name string, n int, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("consul: double barrier %s: participant id %q is empty or contains '/'", name, id)
	}
	s, err := c.sessionOf(ds)
	if err != nil {
		return err
	}
	prefix, ready := c.recipePrefix("barrier", name), c.readyKey(name)
	key := prefix + id
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	err = c.enter(lctx, s, prefix, key, ready, n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, coord.ErrExists) {
		c.removeKey(ctx, s, key)
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("consul: enter double barrier %s: %w", name, ctx.Err())
	case s.Err() != nil:
		return fmt.Errorf("consul: enter double barrier %s: %w", name, s.Err())
	}
	return err
}

func (c *client) enter(ctx context.Context, s *session, prefix, key, ready string, n int) error {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Flags: delayFlags(s), Session: s.id}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: prefix}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: ready}},
	}
	ok, resp, _, err := c.cli.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return c.failed("enter transaction", err)
	}
	if !ok {
		if len(resp.Errors) > 0 && resp.Errors[0].OpIndex == 0 {
			return fmt.Errorf("consul: participant %s already entered: %w", key, coord.ErrExists)
		}
		return c.rejected(ctx, s, resp)
	}
	var pairs []*api.KVPair
	for _, r := range resp.Results {
		if r.KV == nil || r.KV.Key == key {
			continue
		}
		if r.KV.Key == ready {
			return nil // the barrier is already open
		}
		pairs = append(pairs, r.KV)
	}
	var index uint64
	for {
		if len(directChildren(prefix, pairs)) >= n {
			err := c.createOwned(ctx, s, ready, "ready marker is up")
			if errors.Is(err, coord.ErrExists) {
				return nil
			}
			return err
		}
		// Wait until the marker appears or changes (it may have come and
		// gone with its creator's session), then count again.
		kv, next, err := c.getKey(ctx, ready, index)
		if err != nil {
			return err
		}
		if kv != nil {
			return nil
		}
		index = next
		if pairs, _, err = c.listIndexed(ctx, prefix); err != nil {
			return err
		}
	}
}

// LeaveDoubleBarrier deletes participant id's key, then waits with blocking
// queries on the participants' prefix until none is left (each remaining
// participant's departure wakes every leaver: a small herd of at most n).
// A participant whose session ended stops counting. Once none is left it
// deletes the ready marker (compare-and-delete, so a marker raised again by
// a new round is kept) so that the name can be used again; a new round
// should start only after every Leave returned, or its first Enter may see
// the old marker and return at once. Leave does not need a live session.
func (c *client) LeaveDoubleBarrier(ctx context.Context, _ driver.Session, name string, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("consul: double barrier %s: participant id %q is empty or contains '/'", name, id)
	}
	prefix, ready := c.recipePrefix("barrier", name), c.readyKey(name)
	if _, err := c.cli.KV().Delete(prefix+id, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.failed("delete "+prefix+id, err)
	}
	var index uint64
	for {
		pairs, next, err := c.watchPrefix(ctx, prefix, index)
		if ctx.Err() != nil {
			return fmt.Errorf("consul: leave double barrier %s: %w", name, ctx.Err())
		}
		if err != nil {
			return err
		}
		if len(directChildren(prefix, pairs)) == 0 {
			break
		}
		index = next
	}
	kv, _, err := c.cli.KV().Get(ready, (&api.QueryOptions{}).WithContext(ctx))
	if err == nil && kv != nil {
		_, _, err = c.cli.KV().DeleteCAS(&api.KVPair{Key: ready, ModifyIndex: kv.ModifyIndex}, (&api.WriteOptions{}).WithContext(ctx))
	}
	if err != nil {
		return c.failed("delete "+ready, err)
	}
	return nil
}
