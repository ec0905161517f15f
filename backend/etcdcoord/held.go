package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// held is an acquired etcd lock. It ends as lost (coord.Lost of the cause)
// when its session ends or when its key is deleted by anyone but Release.
type held struct {
	*driver.Ownership
	c   *client
	s   *session
	key string
	rev int64

	releasing   atomic.Bool // Release is deleting the key: its delete is no loss
	stopSession func() bool // unregisters the session-loss callback
	stopWatch   context.CancelFunc
	watchDone   chan struct{}
	releaseMu   sync.Mutex
}

var _ driver.Held = (*held)(nil)

// newHeld starts watching for the loss of the lock: the session ending (a
// callback on the session's context, so Done closes at once) and the key's
// deletion (a watch from the revision after its creation, so no delete can
// slip by between acquisition and the watch).
func (c *client) newHeld(s *session, key string, rev int64) *held {
	h := &held{Ownership: driver.NewOwnership(), c: c, s: s, key: key, rev: rev, watchDone: make(chan struct{})}
	h.stopSession = context.AfterFunc(s.ctx, func() { h.End(coord.Lost(s.Err())) })
	wctx, cancel := context.WithCancel(s.ctx)
	h.stopWatch = cancel
	go h.watchKey(wctx)
	return h
}

// Token is the create revision of the holder's key: etcd revisions only grow,
// so each successive holder of a name has a greater token.
func (h *held) Token() uint64 { return uint64(h.rev) }

// watchKey ends the ownership when the key is deleted other than by Release.
// It returns when ctx is cancelled (Release or session end).
func (h *held) watchKey(ctx context.Context) {
	defer close(h.watchDone)
	from := h.rev + 1
	for ctx.Err() == nil {
		wch := h.c.cli.Watch(ctx, h.key, clientv3.WithRev(from), clientv3.WithFilterPut())
		for wr := range wch {
			if wr.Err() != nil {
				break // e.g. compacted: re-check the key below
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					h.deleted(ctx)
					return
				}
			}
			from = wr.Header.Revision + 1
		}
		if ctx.Err() != nil {
			return
		}
		// The watch failed or closed: read the key and watch again after it.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		g, err := h.c.cli.Get(ctx, h.key)
		if err != nil {
			continue
		}
		if len(g.Kvs) == 0 || g.Kvs[0].CreateRevision != h.rev {
			h.deleted(ctx)
			return
		}
		from = g.Header.Revision + 1
	}
}

// deleted reports the key's deletion as a loss unless Release did it. When
// the deletion came from the lease's end (revoked or expired on the server),
// the session ends as expired and the loss carries that cause.
func (h *held) deleted(ctx context.Context) {
	if h.releasing.Load() {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if h.s.leaseGone(lctx) {
		h.End(coord.Lost(h.s.Err()))
		return
	}
	if !h.releasing.Load() {
		h.End(coord.Lost(errKeyGone))
	}
}

// stop ends the loss watchers and waits for the key watch to return.
func (h *held) stop() {
	h.stopSession()
	h.stopWatch()
	<-h.watchDone
}

// Release deletes the key if it is still this holder's (same create
// revision), which hands the lock to the next waiter. It returns an error
// wrapping coord.ErrNotHeld when the lock had already been released or lost.
// If the delete fails (server unreachable), the lock stays held and Release
// may be retried; closing the session also releases it.
func (h *held) Release(ctx context.Context) error {
	h.releaseMu.Lock()
	defer h.releaseMu.Unlock()
	if err := h.Err(); err != nil {
		return notHeld(err)
	}
	if err := h.s.Err(); err != nil {
		h.End(coord.Lost(err))
		h.stop()
		return notHeld(h.Err())
	}
	h.releasing.Store(true)
	resp, err := h.c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
		Then(clientv3.OpDelete(h.key)).
		Commit()
	if err != nil {
		h.releasing.Store(false)
		return fmt.Errorf("etcd unlock: %w", h.c.rpcErr(ctx, "delete lock key", err))
	}
	if !resp.Succeeded {
		h.End(coord.Lost(errKeyGone))
		h.stop()
		return notHeld(h.Err())
	}
	// The delete succeeded, so the lock was ours until now: even if a loss
	// raced with it, the release is what happened.
	h.End(coord.ErrNotHeld)
	h.stop()
	return nil
}

// notHeld wraps the reason an ownership ended so it matches coord.ErrNotHeld.
func notHeld(reason error) error {
	if errors.Is(reason, coord.ErrNotHeld) {
		return fmt.Errorf("etcd unlock: %w", reason)
	}
	return fmt.Errorf("etcd unlock: %w: %w", coord.ErrNotHeld, reason)
}
