package rediscoord

import (
	"context"

	"github.com/coordkit/coord/driver"
)

var _ driver.RWLocker = (*client)(nil)

// RWLock queues an entry "SID:WID" (unique per call) marked as a reader or
// a writer in NS:rwlock:{NAME} and blocks until it holds.
//
// Guarantees: a writer holds when its entry is the first live one; a reader
// holds when no live writer entry is ahead of it. Entries are served in
// arrival order, so a waiting writer is not starved by readers that come
// after it. Herd-free: a writer waits for its immediate predecessor, a reader
// for the nearest writer ahead of it; removing an entry wakes only the
// entries that waited on it (a writer's removal wakes the readers right
// after it, or the writer right after it). The token is the entry's
// sequence number, greater than that of every earlier entry, hence of every
// earlier holder it excludes. With opts.Try it returns coord.ErrLocked when
// it would have to wait, leaving nothing behind. On every other error the
// entry is removed before RWLock returns. A holding whose session is lost
// ends with coord.ErrLockLost; its entry dies with the session. As for the
// lock, everything lives on one Redis primary (see the package doc).
func (c *client) RWLock(ctx context.Context, ds driver.Session, name string, write bool, opts driver.LockOptions) (driver.Held, error) {
	mode := "r"
	if write {
		mode = "w"
	}
	h, err := c.enqueue(ctx, ds, kindRWLock, name, mode, 1, opts.Try)
	if err != nil {
		return nil, err
	}
	return h, nil
}
