package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

var _ driver.Barrierer = (*client)(nil)

// Barrier node names under /<ns>/barrier/<name>. '#' cannot occur in a coord
// name, so they never collide with the node of a nested name.
const (
	barrierHold  = "#hold"  // the raised barrier (ephemeral)
	barrierReady = "#ready" // the double barrier's "n have entered" marker (ephemeral)
	participant  = "#p-"    // prefix of a double-barrier participant (ephemeral)
)

// HoldBarrier raises name: it creates the ephemeral node
// /<ns>/barrier/<name>/#hold owned by the session, so the barrier also comes
// down when the session ends (at once on Close, after the session timeout
// when its process dies). It fails with coord.ErrExists when the node is
// there. A create whose answer was lost is recognized as the session's own
// by its owner and data.
func (c *client) HoldBarrier(ctx context.Context, ds driver.Session, name string) error {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return fmt.Errorf("zkcoord: barrier %q: session does not belong to this client", name)
	}
	if err := s.Err(); err != nil {
		return err
	}
	p := c.recipePath("barrier", name) + "/" + barrierHold
	if err := s.createOwn(ctx, p); err != nil {
		return fmt.Errorf("zkcoord: barrier %q: hold: %w", name, err)
	}
	return nil
}

// createOwn creates the ephemeral node p (and its missing parents) holding
// the session's ID, registered for deletion on Close. It returns an error
// wrapping coord.ErrExists when p is there and is not the session's own
// create that went through unseen.
func (s *session) createOwn(ctx context.Context, p string) error {
	late := func(_ string, err error) { // undo a create that went through after the call gave up
		if err == nil {
			cctx, cancel := cleanupContext(context.Background(), s)
			defer cancel()
			_ = s.deleteNode(cctx, p)
		}
	}
	uncertain := false
	for {
		_, err := call(ctx, s, func() (string, error) { return s.conn.Create(p, []byte(s.id), zk.FlagEphemeral, s.c.acl) }, late)
		switch {
		case err == nil:
			s.addNode(p)
			return nil
		case errors.Is(err, zk.ErrNoNode):
			dir := p[:strings.LastIndexByte(p, '/')]
			if _, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, ensurePath(s.conn, dir, s.c.acl) }, nil); err != nil {
				return err
			}
		case errors.Is(err, zk.ErrNodeExists):
			if uncertain {
				mine, err := s.owns(ctx, p)
				if err != nil {
					return err
				}
				if mine {
					s.addNode(p)
					return nil
				}
			}
			return fmt.Errorf("%s: %w", p, coord.ErrExists)
		case isConnErr(err) && s.Err() == nil:
			uncertain = true
			if err := pause(ctx, s); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// owns reports whether p is an ephemeral node of this coord session.
func (s *session) owns(ctx context.Context, p string) (bool, error) {
	for {
		type res struct {
			data []byte
			st   *zk.Stat
		}
		r, err := call(ctx, s, func() (res, error) {
			d, st, err := s.conn.Get(p)
			return res{d, st}, err
		}, nil)
		switch {
		case err == nil:
			return r.st.EphemeralOwner == s.sid && string(r.data) == s.id, nil
		case errors.Is(err, zk.ErrNoNode):
			return false, nil
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return false, err
			}
		default:
			return false, err
		}
	}
}

// ReleaseBarrier deletes name's #hold node, whoever created it; an absent
// node is not an error. It retries while the connection is down, within ctx.
//
// Limit: on a user's connection (New), a session that held the barrier still
// deletes the #hold path when it closes, even if the barrier was released
// and raised again by another session of the same connection meanwhile.
func (c *client) ReleaseBarrier(ctx context.Context, name string) error {
	p := c.recipePath("barrier", name) + "/" + barrierHold
	for {
		_, err := run(ctx, nil, func() (struct{}, error) { return struct{}{}, c.conn.Delete(p, -1) }, nil)
		switch {
		case err == nil || errors.Is(err, zk.ErrNoNode):
			return nil
		case isConnErr(err) && !c.isClosed():
			if err := sleepCtx(ctx, retryPause); err != nil {
				return fmt.Errorf("zkcoord: barrier %q: release: %w", name, err)
			}
		default:
			return fmt.Errorf("zkcoord: barrier %q: release: %w", name, unavailable(err))
		}
	}
}

// WaitBarrier returns once name's #hold node is absent: an exists watch,
// re-armed by the read that checks the node, so its deletion is never
// missed. It needs no session.
func (c *client) WaitBarrier(ctx context.Context, name string) error {
	p := c.recipePath("barrier", name) + "/" + barrierHold
	for {
		type res struct {
			ok bool
			ch <-chan zk.Event
		}
		r, err := run(ctx, nil, func() (res, error) {
			ok, _, ch, err := c.conn.ExistsW(p)
			return res{ok, ch}, err
		}, nil)
		switch {
		case err == nil && !r.ok:
			return nil
		case err == nil:
			select {
			case <-r.ch: // deleted, or the watch was dropped: check again
			case <-ctx.Done():
				return fmt.Errorf("zkcoord: barrier %q: wait: %w", name, ctx.Err())
			}
		case ctx.Err() != nil:
			return fmt.Errorf("zkcoord: barrier %q: wait: %w", name, ctx.Err())
		case isConnErr(err) && !c.isClosed():
			if err := sleepCtx(ctx, retryPause); err != nil {
				return fmt.Errorf("zkcoord: barrier %q: wait: %w", name, err)
			}
		default:
			return fmt.Errorf("zkcoord: barrier %q: wait: %w", name, unavailable(err))
		}
	}
}

// participants counts the double-barrier participant nodes among children
// and returns the first one (in name order).
func participants(children []string) (n int, first string) {
	for _, ch := range children {
		if strings.HasPrefix(ch, participant) {
			if n == 0 || ch < first {
				first = ch
			}
			n++
		}
	}
	return n, first
}
