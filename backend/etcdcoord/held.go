package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// held is an acquired etcd lock. It ends with coord.ErrNotHeld on Release
// and as lost (coord.Lost of the session's error) when its session ends.
//
// The session is the source of truth: a held lock opens no watch of its own.
// The session notices the end of its lease (expired or revoked on the
// server, or not renewed within the TTL) and ends every lock it holds at
// once. A key deleted by hand while the lease lives is outside the contract
// (that is an operator breaking the lock, and the next waiter proceeds); the
// holder learns of it at Release, which then reports coord.ErrNotHeld.
type held struct {
	*driver.Ownership
	c   *client
	s   *session
	pfx string // the lock's key prefix
	key string
	rev int64

	stopSession func() bool // unregisters the session-loss callback
	releaseMu   sync.Mutex
}

var _ driver.Held = (*held)(nil)

// newHeld ends the ownership as lost when the session ends (a callback on the
// session's context, so Done closes at once). It starts no goroutine.
func (c *client) newHeld(s *session, pfx, key string, rev int64) *held {
	h := &held{Ownership: driver.NewOwnership(), c: c, s: s, pfx: pfx, key: key, rev: rev}
	h.stopSession = context.AfterFunc(s.ctx, func() { h.End(coord.Lost(s.Err())) })
	return h
}

// Token is the create revision of the holder's key: etcd revisions only grow,
// so each successive holder of a name has a greater token.
func (h *held) Token() uint64 { return uint64(h.rev) }

// Release deletes the key, which hands the lock to the next waiter. It
// returns an error wrapping coord.ErrNotHeld when the lock had already been
// released or lost, including when the key is found gone: then the loss is
// reported with the session's expiry as cause if the lease is gone, and as a
// deleted key otherwise. If the delete fails (server unreachable), the lock
// stays held and Release may be retried; closing the session also releases
// it.
func (h *held) Release(ctx context.Context) error {
	h.releaseMu.Lock()
	defer h.releaseMu.Unlock()
	if err := h.Err(); err != nil {
		return notHeld(err)
	}
	if err := h.s.Err(); err != nil {
		h.End(coord.Lost(err))
		h.stopSession()
		return notHeld(h.Err())
	}
	// A plain delete, cheaper than a transaction comparing the create
	// revision: the key's name (the session's lease and a nonce) belongs to
	// this holder alone until the delete is confirmed (keys.go), so a key
	// found under it is this holder's own (short of someone writing keys of
	// the session's lease by hand).
	resp, err := h.c.cli.Delete(ctx, h.key)
	if err != nil {
		return fmt.Errorf("etcd unlock: %w", h.c.rpcErr(ctx, "delete lock key", err))
	}
	if resp.Deleted != 1 {
		// The key is gone: with the lease (the session ends as expired, and
		// its callback ends h with that cause), or deleted by hand.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		gone := h.s.leaseGone(lctx)
		cancel()
		if gone {
			h.End(coord.Lost(h.s.Err()))
		} else {
			h.End(coord.Lost(errKeyGone))
		}
		h.stopSession()
		return notHeld(h.Err())
	}
	// The delete succeeded, so the lock was ours until now: even if a loss
	// raced with it, the release is what happened.
	h.End(coord.ErrNotHeld)
	h.stopSession()
	h.s.putBack(h.pfx, h.key) // the server confirmed the delete (keys.go)
	return nil
}

// notHeld wraps the reason an ownership ended so it matches coord.ErrNotHeld.
func notHeld(reason error) error {
	if errors.Is(reason, coord.ErrNotHeld) {
		return fmt.Errorf("etcd unlock: %w", reason)
	}
	return fmt.Errorf("etcd unlock: %w: %w", coord.ErrNotHeld, reason)
}
