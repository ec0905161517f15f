package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// errKeyGone reports that a contender's own key disappeared while it waited
// or held (deleted by another client, or its lease ended on the server).
var errKeyGone = errors.New("etcd: the lock key was deleted by someone else")

// Lock acquires name for session ds with etcd's native queue.
//
// The contender key is <root>lock/<name>/~/<lease>-<nonce>, bound to the
// session's lease; the nonce makes every Lock call a separate contender, so
// two Mutexes of one session exclude each other. The session reuses the names
// of its released keys (keys.go), never for two live contenders at once.
//
// One transaction takes a free lock with a bare put (when no key at all is
// under the lock's prefix): an uncontended lock costs a single write, and
// its Unlock a single delete. Otherwise, in the same transaction, it puts
// the key and reads the two newest keys of the queue; with no older key, the
// lock is held after that single round trip. Otherwise the caller waits for
// its predecessor, the key created just before its own. It opens a watch on
// that key with no start revision (the server registers it as up to date at
// once, without the catch-up loop an old start revision costs) and waits
// until the watch exists, and only then reads the predecessor again,
// identified by its create revision: if it is still there, its deletion will
// reach the watch. The same read tells whether the predecessor is the oldest
// key; if so, its delete event alone hands the lock over. Otherwise (a waiter
// ahead gave up) the caller looks for the next older key, and when none is
// left, the lock is held. A release therefore wakes only the next waiter, in
// FIFO order.
//
// The token is the key's create revision. Lock gives up with a wrapped
// ctx.Err() when ctx is done and with the session's error when the session
// ends; on every error it deletes its key before returning (when the session
// has ended, the lease has taken the key with it).
func (c *client) Lock(ctx context.Context, ds driver.Session, name string, opts driver.LockOptions) (driver.Held, error) {
	s, err := c.session(ds)
	if err != nil {
		return nil, err
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("etcd lock: %w", err)
	}
	pfx := c.lockPrefix(name)
	key := s.takeKey(pfx)

	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(s.Err()) })
	defer stop()

	rev, err := c.acquire(lctx, s, pfx, key, opts.Try)
	if err != nil {
		if errors.Is(err, errKeyGone) {
			s.leaseGone(lctx) // the key may have gone with the lease
		}
		if c.removeKey(ctx, s, key) {
			s.putBack(pfx, key)
		}
		switch {
		case errors.Is(err, coord.ErrLocked):
			return nil, err
		case s.Err() != nil:
			return nil, fmt.Errorf("etcd lock: %w", s.Err())
		case ctx.Err() != nil:
			return nil, fmt.Errorf("etcd lock: gave up waiting: %w", ctx.Err())
		}
		return nil, err
	}
	return c.newHeld(s, pfx, key, rev), nil
}

// session returns ds as this client's session.
func (c *client) session(ds driver.Session) (*session, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, errors.New("etcdcoord: the session was not opened by this client")
	}
	return s, nil
}

// acquire queues key under pfx and waits until it is the oldest key. It
// returns the key's create revision.
func (c *client) acquire(ctx context.Context, s *session, pfx, key string, try bool) (int64, error) {
	// The transaction is safe to repeat after an unknown outcome: a second
	// run finds the key already there and reads it instead.
	//
	// The outer compare holds when no key at all is under pfx (a prefix
	// compare on create revision 0 matches an empty range only): then the
	// put alone takes the free lock, with no read. Otherwise the nested
	// transaction puts the key (unless a retried run already did) and reads
	// the two newest keys of the queue.
	queue := clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, "", clientv3.WithLease(s.id)),
			clientv3.OpGet(pfx, clientv3.WithPrefix(), clientv3.WithLimit(2),
				clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend))},
		[]clientv3.Op{clientv3.OpGet(key)})
	var resp *clientv3.TxnResponse
	err := retry(ctx, func() (err error) {
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(pfx), "=", 0).WithPrefix()).
			Then(clientv3.OpPut(key, "", clientv3.WithLease(s.id))).
			Else(queue).
			Commit()
		return err
	})
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
		}
		return 0, c.rpcErr(ctx, "lock", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil // the queue was empty: ours is the only key
	}
	nested := resp.Responses[0].GetResponseTxn()
	if nested == nil {
		return 0, fmt.Errorf("etcd lock: %w: unexpected transaction response", coord.ErrCorrupt)
	}
	var (
		rev  int64
		pred *mvccpb.KeyValue
	)
	if nested.Succeeded {
		// The put is the newest write, so the newest key is ours and the
		// next one (if any) is our predecessor.
		rev = resp.Header.Revision
		kvs := nested.Responses[1].GetResponseRange().Kvs
		if len(kvs) == 0 || string(kvs[0].Key) != key {
			return 0, fmt.Errorf("etcd lock: %w: queue under %s does not show our key", coord.ErrCorrupt, pfx)
		}
		if len(kvs) == 1 {
			return rev, nil
		}
		pred = kvs[1]
	} else {
		kvs := nested.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return 0, fmt.Errorf("etcd lock: %w", errKeyGone)
		}
		rev = kvs[0].CreateRevision
	}
	backoff := 20 * time.Millisecond
	for {
		if pred == nil {
			if pred, err = c.predecessor(ctx, pfx, key, rev); err != nil {
				return 0, err
			}
			if pred == nil {
				return rev, nil
			}
		}
		if try {
			return 0, fmt.Errorf("etcd lock: %w", coord.ErrLocked)
		}
		head, err := c.waitDeleted(ctx, pfx, key, rev, pred)
		if err == nil && head {
			// The predecessor was the oldest key, and no key can be created
			// older than it later: with it gone, ours is the oldest.
			return rev, nil
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errKeyGone) {
				return 0, err
			}
			// A watch cancelled by the server (no leader, member restart):
			// look again after a pause; the session bounds how long.
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, c.rpcErr(ctx, "lock", err)
			}
			backoff = min(2*backoff, time.Second)
		} else {
			backoff = 20 * time.Millisecond
		}
		pred = nil
	}
}

// predecessor returns the newest key under pfx created before rev, or nil.
// It fails with errKeyGone when key (created at rev) no longer exists.
func (c *client) predecessor(ctx context.Context, pfx, key string, rev int64) (*mvccpb.KeyValue, error) {
	opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(rev-1))
	var resp *clientv3.TxnResponse
	err := retry(ctx, func() (err error) {
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
			Then(clientv3.OpGet(pfx, opts...)).
			Commit()
		return err
	})
	if err != nil {
		return nil, c.rpcErr(ctx, "lock: find predecessor", err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("etcd lock: %w", errKeyGone)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		return kvs[0], nil
	}
	return nil, nil
}

// waitDeleted returns once pred (identified by key and create revision) no
// longer exists. See Lock for why the watch comes before the read. head
// reports that pred was the oldest key of the queue when it was read, so that
// the caller, whose key (created at rev) came right after it, is now the
// oldest; the same read checks that the caller's key still exists.
func (c *client) waitDeleted(ctx context.Context, pfx, key string, rev int64, pred *mvccpb.KeyValue) (head bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.cli.Watch(wctx, string(pred.Key), clientv3.WithCreatedNotify(), clientv3.WithFilterPut())
	next := func() (deleted bool, err error) {
		select {
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return false, c.rpcErr(ctx, "lock: watch", ctx.Err())
				}
				return false, fmt.Errorf("etcd lock: watch closed: %w", coord.ErrUnavailable)
			}
			if err := wr.Err(); err != nil {
				return false, c.rpcErr(ctx, "lock: watch", err)
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					return true, nil
				}
			}
			return false, nil
		case <-ctx.Done():
			return false, c.rpcErr(ctx, "lock: watch", ctx.Err())
		}
	}
	// The first response confirms the watch exists on the server.
	if deleted, err := next(); deleted || err != nil {
		return false, err
	}
	older := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(pred.CreateRevision-1))
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpGet(string(pred.Key)), clientv3.OpGet(pfx, older...)).
		Commit()
	if err != nil {
		return false, c.rpcErr(ctx, "lock: read predecessor", err)
	}
	if !resp.Succeeded {
		return false, fmt.Errorf("etcd lock: %w", errKeyGone)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != pred.CreateRevision {
		return false, nil
	}
	head = len(resp.Responses[1].GetResponseRange().Kvs) == 0
	for {
		if deleted, err := next(); deleted || err != nil {
			return head && deleted, err
		}
	}
}

// removeKey deletes a contender key after a failed Lock, with a fresh
// context so a cancelled ctx does not prevent the cleanup, and reports
// whether the server confirmed the delete. When the session has ended, the
// lease takes the key with it (revoked by Close, or expired on the server),
// so there is nothing to do, and no reason to wait for a server that may be
// unreachable.
func (c *client) removeKey(ctx context.Context, s *session, key string) bool {
	if s.Err() != nil {
		return false
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := c.cli.Delete(dctx, key)
	return err == nil
}

// retry runs op until it succeeds, fails with an error that is not
// transient, or ctx is done. Only operations that are safe to repeat after an
// unknown outcome may be retried.
func retry(ctx context.Context, op func() error) error {
	backoff := 20 * time.Millisecond
	for {
		err := op()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// transient reports errors after which a request may succeed on a later try:
// leader elections, overload, a connection that is being re-established.
func transient(err error) bool {
	for _, e := range []error{rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrTimeout,
		rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrTooManyRequests} {
		if errors.Is(err, e) {
			return true
		}
	}
	return status.Code(err) == codes.Unavailable
}
