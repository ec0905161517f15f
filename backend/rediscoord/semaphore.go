package rediscoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord/driver"
)

var _ driver.Semaphorer = (*client)(nil)

// Acquire queues an entry "SID:WID" (unique per call) in NS:sem:{NAME} and
// blocks until it is among the first limit live entries.
//
// Guarantees: at most limit live sessions' entries hold at a time. A holder
// whose session is closed or expired by ExpireSession frees its permit at
// once (the script that removes its entries wakes the next waiter); one
// whose session expires on its own (a dead process) frees it when its
// session key expires, within one TTL, noticed by the first waiter's timed
// re-check. FIFO and herd-free: the removal of one of the first limit
// entries wakes exactly the entry that has just become the limit-th; a
// waiter behind it is not woken. The token is the entry's sequence number:
// entries hold in queue order, so tokens increase across successive
// acquisitions. The limit stored with each acquisition is the one removals
// use; all callers of a name must pass the same limit. With opts.Try it
// returns coord.ErrLocked when every permit is taken, leaving nothing
// behind. On every other error the entry is removed before Acquire returns.
func (c *client) Acquire(ctx context.Context, ds driver.Session, name string, limit int, opts driver.LockOptions) (driver.Held, error) {
	if limit < 1 {
		return nil, fmt.Errorf("redis semaphore %s: limit %d, want at least 1", name, limit)
	}
	h, err := c.enqueue(ctx, ds, kindSemaphore, name, "", limit, opts.Try)
	if err != nil {
		return nil, err
	}
	return h, nil
}
