package rediscoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord"
)

// Contenders returns, for recipe "lock", the number of contender entries of
// lock name on the server: 1 if the lock key exists, plus every entry in its
// waiter queue (a dead waiter's entry counts until a release or acquisition
// prunes it). Other recipes return an error wrapping coord.ErrUnsupported.
func (c *client) Contenders(ctx context.Context, recipe, name string) (int, error) {
	if recipe != "lock" {
		return 0, fmt.Errorf("redis: contenders of recipe %q: %w", recipe, coord.ErrUnsupported)
	}
	n, err := scriptContenders.Run(ctx, c.rdb, []string{c.lockBase(name)}).Int()
	if err != nil {
		return 0, c.errUnavailable(fmt.Errorf("contenders of %s: %w", c.lockBase(name), err))
	}
	return n, nil
}

// ExpireSession ends session id on the server, as if its process had stopped
// renewing it and its keys had expired, except that it also releases the
// session's locks and wakes their next waiters at once (the same script as
// Session.Close). The session's own process finds out at its next renewal
// (within a third of the TTL) and reports it lost with coord.ErrSessionExpired.
// It returns an error when id is not a session ID this backend makes.
func (c *client) ExpireSession(ctx context.Context, id string) error {
	if !isHexID(id) {
		return fmt.Errorf("redis: %q is not a coord session ID", id)
	}
	return c.kill(ctx, id)
}
