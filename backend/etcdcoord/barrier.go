package etcdcoord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

var _ driver.Barrierer = (*client)(nil)

// barrierKey is the key of barrier name while it is up; the "~" segment
// keeps barrier "a" apart from barrier "a/b".
func (c *client) barrierKey(name string) string {
	return c.root + "barrier/" + name + "/~/hold"
}

// doubleBarrierPrefix is the prefix of double barrier name: participants
// under <prefix>p/<id>, the ready marker at <prefix>ready.
func (c *client) doubleBarrierPrefix(name string) string {
	return c.root + "dbarrier/" + name + "/~/"
}

// HoldBarrier raises barrier name: it creates the key
// <root>barrier/<name>/~/hold bound to session ds's lease, so the barrier
// goes down by ReleaseBarrier or when the session ends. It fails with an
// error wrapping coord.ErrExists when the key exists. It is safe against a
// lost response: a retry that finds its own value reports success.
func (c *client) HoldBarrier(ctx context.Context, ds driver.Session, name string) error {
	s, err := c.session(ds)
	if err != nil {
		return err
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("etcd barrier: %w", err)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	key, val := c.barrierKey(name), s.hex+"-"+hex.EncodeToString(nonce[:])
	var resp *clientv3.TxnResponse
	err = retry(ctx, func() (err error) {
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(s.id))).
			Else(clientv3.OpGet(key)).
			Commit()
		return err
	})
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
		}
		return c.rpcErr(ctx, "hold barrier", err)
	}
	if resp.Succeeded {
		return nil
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && string(kvs[0].Value) == val {
		return nil // our own put, whose response was lost
	}
	return fmt.Errorf("etcd barrier %q: %w", name, coord.ErrExists)
}

// ReleaseBarrier deletes the barrier's key, whoever raised it. A barrier
// that is down is not an error.
func (c *client) ReleaseBarrier(ctx context.Context, name string) error {
	err := retry(ctx, func() error {
		_, err := c.cli.Delete(ctx, c.barrierKey(name))
		return err
	})
	if err != nil {
		return c.rpcErr(ctx, "release barrier", err)
	}
	return nil
}

// WaitBarrier returns once barrier name is down: it opens a watch on the key
// (confirmed by the server), then reads the key, and if it is there, waits
// for its delete event. A failed watch is opened again after a pause; no
// polling otherwise.
func (c *client) WaitBarrier(ctx context.Context, name string) error {
	key := c.barrierKey(name)
	return c.retryWatch(ctx, "wait barrier", func() error {
		wch, cancel, err := c.openWatch(ctx, key, clientv3.WithFilterPut())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := c.cli.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil || resp.Count == 0 {
			return err
		}
		return nextEvent(ctx, wch, clientv3.EventTypeDelete)
	})
}

// openWatch opens a watch on key with opts and returns once the server has
// confirmed it, so every later change of key reaches the channel. cancel
// ends the watch.
func (c *client) openWatch(ctx context.Context, key string, opts ...clientv3.OpOption) (clientv3.WatchChan, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := c.cli.Watch(wctx, key, append(opts, clientv3.WithCreatedNotify())...)
	select {
	case wr, ok := <-wch:
		switch {
		case !ok:
			cancel()
			return nil, nil, fmt.Errorf("watch closed: %w", coord.ErrUnavailable)
		case wr.Err() != nil:
			cancel()
			return nil, nil, wr.Err()
		}
		return wch, cancel, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, ctx.Err()
	}
}

// nextEvent waits for an event of type typ on wch.
func nextEvent(ctx context.Context, wch clientv3.WatchChan, typ mvccpb.Event_EventType) error {
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("watch closed: %w", coord.ErrUnavailable)
			}
			if err := wr.Err(); err != nil {
				return err
			}
			for _, ev := range wr.Events {
				if ev.Type == typ {
					return nil
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryWatch runs op until it returns nil (done), ctx is done, or a
// permanent error; a failed watch or read is retried after a pause that
// doubles up to a second.
func (c *client) retryWatch(ctx context.Context, what string, op func() error) error {
	backoff := 20 * time.Millisecond
	for {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || permanent(err) || c.cli.Ctx().Err() != nil {
			return c.rpcErr(ctx, what, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return c.rpcErr(ctx, what, err)
		}
		backoff = min(2*backoff, time.Second)
	}
}
