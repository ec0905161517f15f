package etcdcoord

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// EnterDoubleBarrier registers participant id of double barrier name with a
// key <root>dbarrier/<name>/~/p/<id> bound to session ds's lease, and
// returns once n participants are present.
//
// It first opens a watch on the ready marker <root>dbarrier/<name>/~/ready
// (confirmed by the server), then, in one transaction, puts its key, reads
// the marker and counts the participants. If the marker is up it returns at
// once; if it counts n or more, it puts the marker (bound to its own lease,
// so a marker whose round died out does not outlive it) and returns;
// otherwise it waits for the marker's put event. Whoever puts the n-th key
// counts n, and since every participant's watch predates its own key, no one
// misses the marker. A participant whose session ends stops counting (its
// key goes with the lease). On every error (ctx done, session lost) it
// removes its key.
//
// Limits: when the participant that put the marker loses its session before
// the others left, the marker goes with it, and a late arrival waits for n
// live participants again.
func (c *client) EnterDoubleBarrier(ctx context.Context, ds driver.Session, name string, n int, id string) error {
	s, err := c.session(ds)
	if err != nil {
		return err
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("etcd double barrier: %w", err)
	}
	pfx := c.doubleBarrierPrefix(name)
	key, ready := pfx+"p/"+id, pfx+"ready"

	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(s.Err()) })
	defer stop()

	err = c.retryWatch(lctx, "enter double barrier", func() error {
		wch, wcancel, err := c.openWatch(lctx, ready)
		if err != nil {
			return err
		}
		defer wcancel()
		resp, err := c.cli.Txn(lctx).Then(
			clientv3.OpPut(key, s.hex, clientv3.WithLease(s.id)),
			clientv3.OpGet(ready, clientv3.WithCountOnly()),
			clientv3.OpGet(pfx+"p/", clientv3.WithPrefix(), clientv3.WithCountOnly()),
		).Commit()
		if err != nil {
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
			}
			return err
		}
		if resp.Responses[1].GetResponseRange().Count > 0 {
			return nil
		}
		if resp.Responses[2].GetResponseRange().Count >= int64(n) {
			_, err := c.cli.Put(lctx, ready, s.hex, clientv3.WithLease(s.id))
			return err
		}
		return nextEvent(lctx, wch, clientv3.EventTypePut)
	})
	if err == nil {
		return nil
	}
	c.removeKey(ctx, s, key)
	switch {
	case s.Err() != nil:
		return fmt.Errorf("etcd double barrier: %w", s.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("etcd double barrier: gave up waiting: %w", ctx.Err())
	}
	return err
}

// LeaveDoubleBarrier deletes participant id's key and returns once no
// participant key of name remains (participants whose session ended count as
// gone). It watches the participant prefix for deletions (confirmed before
// each count), so every departure wakes every participant still leaving,
// which then counts again with one read: barriers are small, and this keeps
// no one waiting on a key that has already gone. The participant that sees
// the count at zero deletes the ready marker, but only one created before
// that count, so a new round that already began keeps its marker. Leaving
// does not need the session to be live.
func (c *client) LeaveDoubleBarrier(ctx context.Context, ds driver.Session, name string, id string) error {
	if _, err := c.session(ds); err != nil {
		return err
	}
	pfx := c.doubleBarrierPrefix(name)
	key, ready := pfx+"p/"+id, pfx+"ready"
	err := retry(ctx, func() error {
		_, err := c.cli.Delete(ctx, key)
		return err
	})
	if err != nil {
		return c.rpcErr(ctx, "leave double barrier", err)
	}
	return c.retryWatch(ctx, "leave double barrier", func() error {
		wch, cancel, err := c.openWatch(ctx, pfx+"p/", clientv3.WithPrefix(), clientv3.WithFilterPut())
		if err != nil {
			return err
		}
		defer cancel()
		for {
			resp, err := c.cli.Get(ctx, pfx+"p/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if resp.Count == 0 {
				_, err := c.cli.Txn(ctx).
					If(clientv3.Compare(clientv3.CreateRevision(ready), "<", resp.Header.Revision+1)).
					Then(clientv3.OpDelete(ready)).
					Commit()
				return err
			}
			if err := nextEvent(ctx, wch, clientv3.EventTypeDelete); err != nil {
				return err
			}
		}
	})
}
