package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
)

// Contenders counts the keys that recipe keeps for name: "lock", "election"
// (candidacies), "rwlock" (readers and writers), "semaphore" (holders and
// waiters), each counting held and waiting entries, and "barrier" (the
// participants of double barrier name).
func (c *client) Contenders(ctx context.Context, recipe, name string) (int, error) {
	var pfx string
	switch recipe {
	case "lock":
		pfx = c.lockPrefix(name)
	case "election":
		pfx = c.electionPrefix(name)
	case "rwlock":
		pfx = c.rwlockPrefix(name)
	case "semaphore":
		pfx = c.semaphorePrefix(name)
	case "barrier":
		pfx = c.doubleBarrierPrefix(name) + "p/"
	default:
		return 0, fmt.Errorf("etcdcoord: contenders of %q: %w", recipe, coord.ErrUnsupported)
	}
	resp, err := c.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, c.rpcErr(ctx, "count contenders", err)
	}
	return int(resp.Count), nil
}

// ExpireSession revokes the lease whose ID (hexadecimal, as Session.ID
// returns it) is id, as the server does when a lease runs out: every key of
// the session is deleted, and the session learns at once that the lease is
// gone (its marker key's deletion; without a marker, its keep-alive within a
// third of the TTL). A lease that is already gone is not an error.
func (c *client) ExpireSession(ctx context.Context, id string) error {
	n, err := strconv.ParseInt(id, 16, 64)
	if err != nil {
		return fmt.Errorf("etcdcoord: expire session: %q is not a hexadecimal lease ID", id)
	}
	if _, err := c.cli.Revoke(ctx, clientv3.LeaseID(n)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return c.rpcErr(ctx, "revoke lease", err)
	}
	return nil
}
