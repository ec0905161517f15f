package consulcoord

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// heldMark is the value a semaphore entry gets when it takes a permit after
// waiting; the change wakes the waiter queued right behind it.
var heldMark = []byte("held")

// Acquire takes one of limit permits of name with a FIFO queue of keys
// "<root>/semaphore/<name>/<session>-<nonce>", acquired with the session
// (one /v1/txn request queues and lists, as in Lock) and ordered by
// CreateIndex: the first limit entries hold permits. When a holder's session
// ends, Consul deletes its key at once and the first waiter takes the permit.
//
// Waking, herd-free except for the first waiter:
//   - the first waiter (position limit) holds a blocking query on the whole
//     queue, since any holder may leave; it also wakes, and sends one more
//     request, when someone queues behind it;
//   - every later waiter watches only its immediate predecessor's key, and
//     wakes when that key is deleted or changes: a waiter that takes a permit
//     after waiting rewrites its key's value (one extra request), which wakes
//     the next one in turn.
//
// The token is the entry's CreateIndex, so tokens increase in queue order.
// The session's lock-delay is not applied to semaphores. All callers must
// pass the same limit; entries do not record it.
func (c *client) Acquire(ctx context.Context, ds driver.Session, name string, limit int, o driver.LockOptions) (driver.Held, error) {
	if limit < 1 {
		return nil, fmt.Errorf("consul: semaphore %s: limit %d, want at least 1", name, limit)
	}
	prefix := c.recipePrefix("semaphore", name)
	return contend(ctx, c, ds, "semaphore "+name, prefix, "", func(ctx context.Context, s *session, key string) (driver.Held, error) {
		own, pairs, err := c.enqueue(ctx, s, prefix, key, nil)
		if err != nil {
			return nil, err
		}
		index := own.modify // the transaction's index: valid for its listing
		waited := false
		for {
			cs, err := parseEntries(prefix, pairs)
			if err != nil {
				return nil, err
			}
			pos := position(cs, key, own.create)
			if pos < 0 {
				return nil, c.ownKeyGone(ctx, s, key)
			}
			if pos < limit {
				ct := cs[pos]
				if waited {
					if ct.modify, err = c.markHeld(ctx, s, ct); err != nil {
						return nil, err
					}
				}
				return c.newHeld(s, ct), nil
			}
			if o.Try {
				return nil, coord.ErrLocked
			}
			waited = true
			if pos == limit {
				if pairs, index, err = c.watchPrefix(ctx, prefix, index); err != nil {
					return nil, err
				}
				continue
			}
			if err := c.waitChanged(ctx, cs[pos-1]); err != nil {
				return nil, err
			}
			if pairs, index, err = c.listIndexed(ctx, prefix); err != nil {
				return nil, err
			}
		}
	})
}

// markHeld rewrites own's value to heldMark, retrying transient failures
// until ctx is done, and returns the new ModifyIndex.
func (c *client) markHeld(ctx context.Context, s *session, own contender) (uint64, error) {
	b := backoff{}
	for {
		modify, ok, err := c.rewrite(ctx, s, own, heldMark)
		switch {
		case err == nil && ok:
			return modify, nil
		case err == nil:
			// Changed: by an earlier attempt whose answer was lost, or gone.
			kv, _, gerr := c.cli.KV().Get(own.key, (&api.QueryOptions{}).WithContext(ctx))
			if gerr == nil && kv != nil && kv.CreateIndex == own.create && kv.Session == s.id {
				return kv.ModifyIndex, nil
			}
			if gerr == nil {
				return 0, c.ownKeyGone(ctx, s, own.key)
			}
		case refused(err):
			return 0, err
		}
		if !b.sleep(ctx) {
			return 0, ctx.Err()
		}
	}
}
