package zkcoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

var _ driver.RWLocker = (*client)(nil)

// RWLock acquires name as a reader or a writer (Curator's
// InterProcessReadWriteLock): each call creates a protected
// ephemeral-sequential node, "_c_<guid>-read-N" or "_c_<guid>-write-N",
// under /<ns>/rwlock/<name>, and the nodes form one FIFO queue:
//
//   - a writer holds the lock when its node is the first; it watches only
//     its immediate predecessor (of either kind);
//   - a reader holds the lock when no writer's node is ahead of its own; it
//     watches only the nearest writer ahead.
//
// So a waiting writer is not overtaken by readers that arrive after it. A
// writer's release wakes every reader queued right behind it (they may all
// proceed), otherwise each release wakes one waiter. The token is the node's
// creation zxid: greater than that of every earlier holder the new holder
// excludes, since those are all ahead of it in the queue. On every failure
// (Try refused, ctx done, session lost) the node is deleted before RWLock
// returns; Release and loss behave as for Lock.
func (c *client) RWLock(ctx context.Context, ds driver.Session, name string, write bool, opts driver.LockOptions) (driver.Held, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("zkcoord: rwlock %q: session does not belong to this client", name)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	kind := kindRead
	if write {
		kind = kindWrite
	}
	dir := c.recipePath("rwlock", name)
	node, token, err := s.enqueue(ctx, dir, kind, []byte(s.id))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: rwlock %q: %w", name, err)
	}
	h, err := s.acquireShared(ctx, dir, node, token, write, opts.Try)
	if err != nil {
		return nil, fmt.Errorf("zkcoord: rwlock %q: %w", name, s.dequeue(ctx, node, err))
	}
	return h, nil
}

// acquireShared waits until node may hold the read-write lock of dir.
func (s *session) acquireShared(ctx context.Context, dir, node string, token int64, write, try bool) (*held, error) {
	me := node[len(dir)+1:]
	for {
		children, err := s.children(ctx, dir)
		if err != nil {
			return nil, err
		}
		q := queueOf(children, kindRead, kindWrite)
		i := indexOfEntry(q, me)
		if i < 0 {
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("contender node %s was deleted by someone else: %w", node, coord.ErrLockLost)
		}
		blocker := -1 // the contender this one waits for
		if write {
			blocker = i - 1
		} else {
			for j := i - 1; j >= 0; j-- {
				if q[j].kind == kindWrite {
					blocker = j
					break
				}
			}
		}
		if blocker < 0 {
			return s.hold(ctx, node, token)
		}
		if try {
			return nil, fmt.Errorf("%w (%d contender(s) ahead)", coord.ErrLocked, i)
		}
		pred := dir + "/" + q[blocker].name
		wch, _, err := s.watchNode(ctx, pred)
		if err != nil {
			return nil, err
		}
		if wch == nil {
			continue // gone between the listing and the watch
		}
		if err := s.waitEvent(ctx, pred, wch); err != nil {
			return nil, err
		}
	}
}
