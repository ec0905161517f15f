package consulcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// held is a lock held through a contender key. Its loss is detected through
// its session (renewal failures, and a blocking query that sees a server-side
// invalidation at once); a key deleted by hand while the session lives is
// noticed only at Release.
type held struct {
	*driver.Ownership
	c     *client
	s     *session
	key   string
	token uint64
	// lost wraps the cause of a loss: coord.Lost, or coord.LostLeadership
	// for an election term.
	lost func(cause error) error

	mu     sync.Mutex // serializes the writes to key and guards modify
	modify uint64
}

var _ driver.Held = (*held)(nil)

// newHeld returns the ownership of ct and ends it with coord.Lost(s.Err())
// when the session ends first.
func (c *client) newHeld(s *session, ct contender) *held {
	return c.newHeldLost(s, ct, coord.Lost)
}

// newHeldLost is newHeld with the given loss wrapper.
func (c *client) newHeldLost(s *session, ct contender, lost func(error) error) *held {
	h := &held{Ownership: driver.NewOwnership(), c: c, s: s, key: ct.key, token: ct.create, modify: ct.modify, lost: lost}
	go func() {
		select {
		case <-s.Done():
			h.End(lost(s.Err()))
		case <-h.Done():
		}
	}()
	return h
}

// Token is the CreateIndex of the holder's key: a Raft index, strictly
// greater for each successive holder of the name.
func (h *held) Token() uint64 { return h.token }

// Release deletes the holder's key (compare-and-delete on its ModifyIndex,
// so a key that was replaced is never touched). The next waiter's blocking
// query returns at once. It returns an error wrapping coord.ErrNotHeld when
// the lock had already ended or its key was already gone.
func (h *held) Release(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.Err(); err != nil {
		return fmt.Errorf("consul: release %s: %w", h.key, notHeld(err))
	}
	ok, _, err := h.c.cli.KV().DeleteCAS(&api.KVPair{Key: h.key, ModifyIndex: h.modify}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return h.c.failed("release "+h.key, err)
	}
	if !ok {
		cause := h.s.Err()
		if cause == nil {
			cause = errors.New("the lock's key was deleted or changed by someone else")
		}
		h.End(h.lost(cause))
		return fmt.Errorf("consul: release %s: %w", h.key, notHeld(h.Err()))
	}
	h.End(coord.ErrNotHeld)
	return nil
}

// notHeld wraps coord.ErrNotHeld around the reason an ownership ended.
func notHeld(ended error) error {
	if errors.Is(ended, coord.ErrNotHeld) {
		return ended
	}
	return fmt.Errorf("%w (%w)", coord.ErrNotHeld, ended)
}
