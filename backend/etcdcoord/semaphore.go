package etcdcoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord/driver"
)

var _ driver.Semaphorer = (*client)(nil)

// semaphorePrefix is the prefix of the contender keys of semaphore name; the
// "~" segment keeps semaphore "a" apart from semaphore "a/b".
func (c *client) semaphorePrefix(name string) string {
	return c.root + "semaphore/" + name + "/~/"
}

// Acquire takes one of limit permits of name for session ds with etcd's
// native queue: one key per call, <root>semaphore/<name>/~/<lease>-<nonce>,
// bound to the session's lease and ordered by create revision. The first
// limit keys hold the permits; the others wait in FIFO order. A holder's
// permit is its key, so when its session ends (closed, revoked or expired)
// the lease takes the key with it and the next waiter moves up at once.
//
// A waiter watches the limit keys right ahead of it (each watch confirmed by
// the server before the keys are read again): only the deletion of one of
// them can bring it among the first limit, since no key is ever created
// ahead of an existing one. A release therefore wakes at most the limit
// waiters right behind the released key (one when the oldest holder
// releases), never the whole queue; each woken waiter reads the queue once.
// With a limit above 8 a waiter opens one watch on the semaphore's prefix
// instead of one per key: it then receives every deletion of the name, but
// still reads the queue only when one of its limit keys went.
//
// The token is the key's create revision, so later acquisitions have
// greater tokens. All callers of name must pass the same limit. With
// opts.Try, Acquire fails with coord.ErrLocked when every permit is taken.
// It gives up with a wrapped ctx.Err() when ctx is done and with the
// session's error when the session ends, and deletes its key on every error.
func (c *client) Acquire(ctx context.Context, ds driver.Session, name string, limit int, opts driver.LockOptions) (driver.Held, error) {
	s, err := c.session(ds)
	if err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, fmt.Errorf("etcd semaphore %q: limit %d, want at least 1", name, limit)
	}
	pfx := c.semaphorePrefix(name)
	w := queueWait{op: "semaphore", pfx: pfx, key: contenderKey(pfx, s), ahead: pfx, n: limit, try: opts.Try}
	rev, err := c.contend(ctx, s, w)
	if err != nil {
		return nil, err
	}
	return c.newHeld(s, w.pfx, w.key, rev), nil
}
