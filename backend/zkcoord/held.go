package zkcoord

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// held is an acquired lock: the session's contender node at the head of the
// queue. It ends with coord.ErrNotHeld on Release, and with coord.Lost(cause)
// when the session is closed or lost (the session ends every lock it holds
// at once, before its Done closes).
//
// The ZooKeeper session is the source of truth: the node is ephemeral and
// dies with it, so a held lock sets no watch of its own. A node deleted by
// hand while the session lives is outside the contract (that breaks the
// lock, and the next waiter proceeds); the holder learns of it at Release,
// which then reports coord.ErrNotHeld.
type held struct {
	*driver.Ownership
	s     *session
	path  string
	token uint64
}

var _ driver.Held = (*held)(nil)

// Token is the contender node's creation zxid: strictly greater for each
// successive holder of the name.
func (h *held) Token() uint64 { return h.token }

// hold turns the head contender node into a held lock, registered with the
// session for loss notification. It makes no request.
func (s *session) hold(_ context.Context, node string, token int64) (*held, error) {
	h := &held{Ownership: driver.NewOwnership(), s: s, path: node, token: uint64(token)}
	if !s.addHeld(h) {
		return nil, s.Err()
	}
	return h, nil
}

// Release deletes the node, then ends h with coord.ErrNotHeld. It returns an
// error wrapping coord.ErrNotHeld if h had already ended or the node was gone.
// If the server cannot be reached within ctx, Release returns the error and
// the lock stays held until the delete goes through or the session ends.
func (h *held) Release(ctx context.Context) error {
	if err := h.Err(); err != nil {
		return fmt.Errorf("zkcoord: release %s: %w", h.path, notHeld(err))
	}
	released := func() {
		h.s.dropNode(h.path)
		h.s.dropHeld(h)
		h.End(coord.ErrNotHeld)
	}
	late := func(_ struct{}, err error) { // the delete went through after Release gave up
		if err == nil {
			released()
		}
	}
	_, err := call(ctx, h.s, func() (struct{}, error) { return struct{}{}, h.s.conn.Delete(h.path, -1) }, late)
	switch {
	case err == nil:
		released()
		return nil
	case errors.Is(err, zk.ErrNoNode):
		h.s.dropNode(h.path)
		h.s.dropHeld(h)
		cause := h.s.Err()
		if cause == nil {
			cause = fmt.Errorf("zkcoord: lock node %s was already gone", h.path)
		}
		h.End(coord.Lost(cause))
		return fmt.Errorf("zkcoord: release %s: %w", h.path, notHeld(h.Err()))
	default:
		if e := h.Err(); e != nil {
			return fmt.Errorf("zkcoord: release %s: %w", h.path, notHeld(e))
		}
		// The server refused, or Release gave up waiting (then the delete
		// may still go through, and late ends h as released).
		return fmt.Errorf("zkcoord: release %s: %w", h.path, err)
	}
}

// notHeld wraps coord.ErrNotHeld around why an ownership ended.
func notHeld(cause error) error {
	if errors.Is(cause, coord.ErrNotHeld) {
		return cause
	}
	return fmt.Errorf("%w (%w)", coord.ErrNotHeld, cause)
}
