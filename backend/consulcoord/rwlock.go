package consulcoord

import (
	"context"
	"strings"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Key suffixes marking a read-write lock entry's kind.
const (
	readerSuffix = "-r"
	writerSuffix = "-w"
)

// RWLock acquires name as a reader or a writer with one FIFO queue of keys
// "<root>/rwlock/<name>/<session>-<nonce>-r|-w", acquired with the session
// and ordered by CreateIndex (one /v1/txn request queues and lists, as in
// Lock). A writer holds the lock when it is first in the queue and waits
// for its immediate predecessor, whatever its kind; a reader holds it when no
// writer is ahead of it and waits for the nearest writer ahead. Waits are
// blocking queries on that one key, so a release wakes only the waiters
// that may proceed, and a waiting writer is never overtaken by readers that
// queued after it.
//
// The token is the entry's CreateIndex: a writer's is greater than every
// earlier holder's, a reader's greater than every earlier writer's. Readers
// holding together have distinct tokens. The session's lock-delay is
// emulated as in Lock, after the awaited entry's session was invalidated.
// With opts.Try a writer fails with coord.ErrLocked unless the queue is
// empty, a reader unless no writer is queued.
func (c *client) RWLock(ctx context.Context, ds driver.Session, name string, write bool, o driver.LockOptions) (driver.Held, error) {
	prefix := c.recipePrefix("rwlock", name)
	suffix := readerSuffix
	if write {
		suffix = writerSuffix
	}
	return contend(ctx, c, ds, "rwlock "+name, prefix, suffix, func(ctx context.Context, s *session, key string) (driver.Held, error) {
		own, pairs, err := c.enqueue(ctx, s, prefix, key, nil)
		if err != nil {
			return nil, err
		}
		var gone *contender
		for {
			cs, err := parseEntries(prefix, pairs)
			if err != nil {
				return nil, err
			}
			pos := position(cs, key, own.create)
			if pos < 0 {
				return nil, c.ownKeyGone(ctx, s, key)
			}
			block := blocker(cs, pos, write)
			if block < 0 {
				if gone != nil {
					if err := c.lockDelayWait(ctx, *gone); err != nil {
						return nil, err
					}
				}
				return c.newHeld(s, cs[pos]), nil
			}
			if o.Try {
				return nil, coord.ErrLocked
			}
			pred := cs[block]
			if err := c.waitGone(ctx, pred); err != nil {
				return nil, err
			}
			gone = &pred
			if pairs, err = c.list(ctx, prefix); err != nil {
				return nil, err
			}
		}
	})
}

// blocker returns the index of the entry that the entry at pos waits for, or
// -1 when it holds the lock: a writer's predecessor; a reader's nearest
// earlier writer.
func blocker(cs []contender, pos int, write bool) int {
	if write {
		return pos - 1
	}
	for i := pos - 1; i >= 0; i-- {
		if strings.HasSuffix(cs[i].key, writerSuffix) {
			return i
		}
	}
	return -1
}
