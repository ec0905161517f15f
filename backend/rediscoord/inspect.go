package rediscoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord"
)

// Contenders returns the number of contender entries coord keeps for name:
//   - "lock": 1 if the lock key exists, plus every entry in its waiter queue;
//   - "election", "rwlock", "semaphore": every entry of the name's queue
//     (candidacies, readers and writers, permit holders and waiters);
//   - "barrier": the participants of double barrier name.
//
// A dead session's entry counts until a script prunes it (the next release,
// acquisition or read that meets it). Other recipes return an error wrapping
// coord.ErrUnsupported.
func (c *client) Contenders(ctx context.Context, recipe, name string) (int, error) {
	var (
		n   int64
		err error
		key string
	)
	switch recipe {
	case "lock":
		key = c.lockBase(name)
		n, err = scriptContenders.Run(ctx, c.rdb, []string{key}).Int64()
	case "election", "rwlock", "semaphore":
		kind := map[string]byte{"election": kindElection, "rwlock": kindRWLock, "semaphore": kindSemaphore}[recipe]
		key = c.qBase(kind, name) + ":q"
		n, err = c.rdb.ZCard(ctx, key).Result()
	case "barrier":
		key = c.dbarrierBase(name) + ":p"
		n, err = c.rdb.HLen(ctx, key).Result()
	default:
		return 0, fmt.Errorf("redis: contenders of recipe %q: %w", recipe, coord.ErrUnsupported)
	}
	if err != nil {
		return 0, c.errUnavailable(fmt.Errorf("contenders of %s: %w", key, err))
	}
	return int(n), nil
}

// ExpireSession ends session id on the server, as if its process had stopped
// renewing it and its keys had expired, except that it also removes
// everything the session owns (locks, candidacies, read-write lock and
// semaphore entries, barriers, double-barrier participants) and wakes their
// waiters at once (the same script as Session.Close). The session's own
// process finds out at its next renewal (within a third of the TTL) and
// reports it lost with coord.ErrSessionExpired. It returns an error when id
// is not a session ID this backend makes.
func (c *client) ExpireSession(ctx context.Context, id string) error {
	if !isHexID(id) {
		return fmt.Errorf("redis: %q is not a coord session ID", id)
	}
	return c.kill(ctx, id)
}
