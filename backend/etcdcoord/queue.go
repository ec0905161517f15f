package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
)

// This file holds the queue shared by the election, the read-write lock and
// the semaphore: each call puts a contender key bound to the session's lease,
// and the contenders are ordered by create revision. A contender waits until
// fewer than n keys of a given prefix were created before its own (n = 1 for
// the election, the read-write lock; n = limit for the semaphore).

// contenderKey returns a contender key under pfx that no live contender
// uses: a spare name of the session's (see keys.go) or a new
// <lease>-<nonce> one, so that every call is a separate contender.
func contenderKey(pfx string, s *session) string { return s.takeKey(pfx) }

// queueWait describes one contender of contend.
type queueWait struct {
	op    string // for messages: "election", "rwlock", "semaphore"
	pfx   string // the prefix the key was taken under
	key   string // the contender key
	value string // stored in the key
	ahead string // the prefix of the keys that can keep the contender waiting
	n     int    // the contender proceeds once fewer than n such keys are older
	try   bool   // fail with coord.ErrLocked instead of waiting
}

// contend puts the contender key and waits for its turn. It returns the key's
// create revision. It gives up with a wrapped ctx.Err() when ctx is done and
// with the session's error when the session ends; on every error it deletes
// the key before returning (a key of an ended session went with its lease).
func (c *client) contend(ctx context.Context, s *session, w queueWait) (int64, error) {
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("etcd %s: %w", w.op, err)
	}
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(s.Err()) })
	defer stop()

	rev, err := c.enqueue(lctx, s, w)
	if err == nil {
		err = c.waitAhead(lctx, w, rev)
	}
	if err == nil {
		return rev, nil
	}
	if errors.Is(err, errKeyGone) {
		s.leaseGone(lctx) // the key may have gone with the lease
	}
	if c.removeKey(ctx, s, w.key) {
		s.putBack(w.pfx, w.key) // the server confirmed the delete
	}
	switch {
	case errors.Is(err, coord.ErrLocked):
		return 0, err
	case s.Err() != nil:
		return 0, fmt.Errorf("etcd %s: %w", w.op, s.Err())
	case ctx.Err() != nil:
		return 0, fmt.Errorf("etcd %s: gave up waiting: %w", w.op, ctx.Err())
	}
	return 0, err
}

// enqueue puts the contender key, bound to the lease, and returns its create
// revision. It is safe to repeat after an unknown outcome: a second run finds
// the key and reads its create revision instead.
func (c *client) enqueue(ctx context.Context, s *session, w queueWait) (int64, error) {
	var resp *clientv3.TxnResponse
	err := retry(ctx, func() (err error) {
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", 0)).
			Then(clientv3.OpPut(w.key, w.value, clientv3.WithLease(s.id))).
			Else(clientv3.OpGet(w.key)).
			Commit()
		return err
	})
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
		}
		return 0, c.rpcErr(ctx, w.op, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, fmt.Errorf("etcd %s: %w", w.op, errKeyGone)
	}
	return kvs[0].CreateRevision, nil
}

// waitAhead returns once fewer than w.n keys under w.ahead were created
// before rev, the create revision of w.key.
//
// While it waits, it watches the w.n keys under w.ahead created last before
// its own: only their deletion can bring the count below w.n (keys are never
// created older than an existing one, and the deletion of an older key
// leaves the w.n nearer ones ahead). As for the lock, each watch is opened
// with no start revision and waited for until the server confirmed it, and
// only then are the keys read again: a key found still there will report its
// deletion. A deletion wakes at most the w.n contenders right behind the
// deleted key; for n = 1 this is the lock's predecessor chain.
//
// Every read is a transaction that also checks that w.key still exists with
// its create revision, so the final "fewer than n ahead" is a statement
// about this call's own key (errKeyGone otherwise).
func (c *client) waitAhead(ctx context.Context, w queueWait, rev int64) error {
	var watch *keysWatch
	defer func() { watch.stop() }()
	backoff := 20 * time.Millisecond
	for {
		ahead, err := c.keysAhead(ctx, w, rev)
		if err != nil {
			return err
		}
		if len(ahead) < w.n {
			return nil
		}
		if w.try {
			return fmt.Errorf("etcd %s: %w", w.op, coord.ErrLocked)
		}
		if watch.covers(ahead) {
			err = watch.waitDelete(ctx)
		} else {
			watch.stop()
			watch, err = c.watchKeys(ctx, w.ahead, ahead)
		}
		if err == nil {
			backoff = 20 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return c.rpcErr(ctx, w.op+": watch", ctx.Err())
		}
		// A watch cancelled by the server (no leader, member restart): look
		// again after a pause; ctx and the session bound how long.
		watch.stop()
		watch = nil
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return c.rpcErr(ctx, w.op+": watch", err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// keysAhead returns the (at most w.n) keys under w.ahead created last before
// rev, newest first, after checking that w.key still exists.
func (c *client) keysAhead(ctx context.Context, w queueWait, rev int64) ([]*mvccpb.KeyValue, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(rev - 1),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
		clientv3.WithLimit(int64(w.n)), clientv3.WithKeysOnly()}
	var resp *clientv3.TxnResponse
	err := retry(ctx, func() (err error) {
		resp, err = c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", rev)).
			Then(clientv3.OpGet(w.ahead, opts...)).
			Commit()
		return err
	})
	if err != nil {
		return nil, c.rpcErr(ctx, w.op+": read the queue", err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("etcd %s: %w", w.op, errKeyGone)
	}
	return resp.Responses[0].GetResponseRange().Kvs, nil
}

// keysWatch is a set of watches, one per key, that report deletions.
type keysWatch struct {
	keys   []*mvccpb.KeyValue
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notes  chan error // nil: a key was deleted; otherwise the watch failed
}

// maxKeyWatches is the number of keys above which watchKeys watches their
// prefix with one watch instead of opening one watch per key.
const maxKeyWatches = 8

// watchKeys opens a watch on each key (no start revision, deletes only) and
// returns once the server confirmed every one of them, or one of them failed
// or already saw a deletion (then the returned error is nil, and the caller
// reads the queue again). For more than maxKeyWatches keys (a semaphore with
// a large limit), it opens a single watch on pfx instead, which receives
// every deletion under pfx but reports only those of the keys.
func (c *client) watchKeys(ctx context.Context, pfx string, keys []*mvccpb.KeyValue) (*keysWatch, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	kw := &keysWatch{keys: keys, cancel: cancel, notes: make(chan error, 2*len(keys))}
	created := make(chan struct{}, len(keys))
	watches := len(keys)
	if watches > maxKeyWatches {
		set := make(map[string]bool, len(keys))
		for _, kv := range keys {
			set[string(kv.Key)] = true
		}
		wch := c.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithFilterPut())
		kw.wg.Add(1)
		go kw.forward(wctx, wch, created, func(k []byte) bool { return set[string(k)] })
		watches = 1
	} else {
		for _, kv := range keys {
			wch := c.cli.Watch(wctx, string(kv.Key), clientv3.WithCreatedNotify(), clientv3.WithFilterPut())
			kw.wg.Add(1)
			go kw.forward(wctx, wch, created, func([]byte) bool { return true })
		}
	}
	for range watches {
		select {
		case <-created:
		case err := <-kw.notes:
			// A deletion already (re-read) or a failure: either way the
			// caller reads again; keep the note for waitDelete.
			kw.notes <- err
			if err != nil {
				kw.stop()
				return nil, err
			}
			return kw, nil
		case <-ctx.Done():
			kw.stop()
			return nil, ctx.Err()
		}
	}
	return kw, nil
}

// forward reports the creation of one watch on created, and its first
// deletion event of a key that match accepts, or its failure, on kw.notes;
// then it returns.
func (kw *keysWatch) forward(ctx context.Context, wch clientv3.WatchChan, created chan<- struct{}, match func([]byte) bool) {
	defer kw.wg.Done()
	note := func(err error) {
		select {
		case kw.notes <- err:
		case <-ctx.Done():
		}
	}
	for wr := range wch {
		if err := wr.Err(); err != nil {
			note(err)
			return
		}
		if wr.Created {
			created <- struct{}{}
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete && match(ev.Kv.Key) {
				note(nil)
				return
			}
		}
	}
	if ctx.Err() == nil {
		note(fmt.Errorf("watch closed: %w", coord.ErrUnavailable))
	}
}

// covers reports whether kw watches exactly the keys ahead (same keys, same
// create revisions), in which case every one of them still existed when
// ahead was read, after the watches were confirmed.
func (kw *keysWatch) covers(ahead []*mvccpb.KeyValue) bool {
	if kw == nil || len(kw.keys) != len(ahead) {
		return false
	}
	for i, kv := range ahead {
		if string(kw.keys[i].Key) != string(kv.Key) || kw.keys[i].CreateRevision != kv.CreateRevision {
			return false
		}
	}
	return true
}

// waitDelete waits until a watched key is deleted (nil), a watch fails (its
// error) or ctx is done.
func (kw *keysWatch) waitDelete(ctx context.Context) error {
	select {
	case err := <-kw.notes:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop cancels the watches and waits for their goroutines. A nil kw is a
// no-op.
func (kw *keysWatch) stop() {
	if kw == nil {
		return
	}
	kw.cancel()
	kw.wg.Wait()
}
