package etcdcoord

import (
	"context"

	"github.com/coordkit/coord/driver"
)

var _ driver.RWLocker = (*client)(nil)

// rwlockPrefix is the prefix of the contender keys of read-write lock name:
// readers under <prefix>r/, writers under <prefix>w/. The "~" segment keeps
// lock "a" apart from lock "a/b".
func (c *client) rwlockPrefix(name string) string {
	return c.root + "rwlock/" + name + "/~/"
}

// RWLock acquires read-write lock name for session ds, as a writer when write
// is true, with etcd's native queue: one key per call, bound to the session's
// lease, <root>rwlock/<name>/~/w/<lease>-<nonce> for a writer and .../r/...
// for a reader, all ordered by create revision.
//
// A reader holds the lock once no writer key is older than its own; while
// one is, it watches only the newest such writer (confirmed watch, then a
// read, as for Lock). A writer holds the lock once no key at all is older
// than its own, and watches only its immediate predecessor, reader or
// writer. The order is FIFO: a reader that arrives after a waiting writer
// queues behind it, so a stream of readers does not starve writers. A
// writer's release wakes the readers queued right behind it (they all get
// the lock together) or the next writer; a reader's release wakes at most
// the writer right behind it.
//
// The token is the key's create revision: greater than that of every
// earlier writer, and for a writer, of every earlier reader. With opts.Try,
// RWLock fails with coord.ErrLocked instead of waiting. It gives up with a
// wrapped ctx.Err() when ctx is done and with the session's error when the
// session ends, and deletes its key on every error.
func (c *client) RWLock(ctx context.Context, ds driver.Session, name string, write bool, opts driver.LockOptions) (driver.Held, error) {
	s, err := c.session(ds)
	if err != nil {
		return nil, err
	}
	pfx := c.rwlockPrefix(name)
	w := queueWait{op: "rwlock", n: 1, try: opts.Try}
	if write {
		w.pfx, w.ahead = pfx+"w/", pfx
	} else {
		w.pfx, w.ahead = pfx+"r/", pfx+"w/"
	}
	w.key = contenderKey(w.pfx, s)
	rev, err := c.contend(ctx, s, w)
	if err != nil {
		return nil, err
	}
	return c.newHeld(s, w.pfx, w.key, rev), nil
}
