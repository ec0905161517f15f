package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// held is an acquired lock: the session's contender node at the head of the
// queue. It ends with coord.ErrNotHeld on Release, and with coord.Lost(cause)
// when the session is closed or lost or the node is deleted by someone else
// (a getData watch on the node reports that).
type held struct {
	*driver.Ownership
	s         *session
	path      string
	token     uint64
	releasing atomic.Bool
}

var _ driver.Held = (*held)(nil)

// Token is the contender node's creation zxid: strictly greater for each
// successive holder of the name.
func (h *held) Token() uint64 { return h.token }

// hold turns the head contender node into a held lock and watches the node.
func (s *session) hold(ctx context.Context, node string, token int64) (*held, error) {
	h := &held{Ownership: driver.NewOwnership(), s: s, path: node, token: uint64(token)}
	for {
		wch, err := call(ctx, s, func() (<-chan zk.Event, error) {
			_, _, ch, err := s.conn.GetW(node)
			return ch, err
		}, nil)
		switch {
		case err == nil:
			if !s.addHeld(h) {
				return nil, s.Err()
			}
			go h.watch(wch)
			return h, nil
		case errors.Is(err, zk.ErrNoNode):
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("contender node %s was deleted by someone else: %w", node, coord.ErrLockLost)
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// watch ends h if its node is deleted by anyone but Release. It returns when
// h ends or the watch does (session expired, connection closed).
func (h *held) watch(wch <-chan zk.Event) {
	for {
		select {
		case ev := <-wch:
			switch ev.Type {
			case zk.EventNodeDeleted:
				if h.releasing.Load() {
					return
				}
				h.s.dropNode(h.path)
				h.s.dropHeld(h)
				cause := h.s.Err()
				if cause == nil {
					cause = fmt.Errorf("zkcoord: lock node %s was deleted by someone else", h.path)
				}
				h.End(coord.Lost(cause))
				return
			case zk.EventNodeDataChanged: // someone wrote to it: watch again
				_, _, ch, err := h.s.conn.GetW(h.path)
				if err != nil {
					return
				}
				wch = ch
			default: // the watch ended with the connection or the session
				return
			}
		case <-h.Done():
			return
		}
	}
}

// Release deletes the node, then ends h with coord.ErrNotHeld. It returns an
// error wrapping coord.ErrNotHeld if h had already ended or the node was gone.
// If the server cannot be reached within ctx, Release returns the error and
// the lock stays held until the delete goes through or the session ends.
func (h *held) Release(ctx context.Context) error {
	if err := h.Err(); err != nil {
		return fmt.Errorf("zkcoord: release %s: %w", h.path, notHeld(err))
	}
	h.releasing.Store(true)
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
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			// The server refused: the node is still there. (A delete that
			// Release gave up on may still go through; releasing stays set so
			// that its deletion is not taken for a loss.)
			h.releasing.Store(false)
		}
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
