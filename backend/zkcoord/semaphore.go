package zkcoord

import (
	"context"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

var _ driver.Semaphorer = (*client)(nil)

// Acquire takes one of limit permits of name. Each call creates a protected
// ephemeral-sequential node "_c_<guid>-sem-N" under /<ns>/semaphore/<name>;
// the first limit nodes of the queue hold permits (FIFO). Because the nodes
// are ephemeral, a holder whose session is lost frees its permit as soon as
// ZooKeeper expires the session (and at once on Close); the waiter watching
// it proceeds without waiting for anything else.
//
// Herd-free waiting: the first waiter (at position limit) watches the limit
// holders' nodes, so a release wakes only it. Every later waiter watches only
// its immediate predecessor's node. A waiter that becomes a holder while a
// contender is queued behind it writes to its own node, which fires its
// successor's getData watch: the successor is now the first waiter and
// starts watching the holders. (A successor arming its watch after that
// write sees the node's version above zero and looks again at once.)
//
// The token is the node's creation zxid; holders are taken in queue order,
// so tokens increase across successive acquisitions. All callers of one name
// must use the same limit. On every failure the node is deleted before
// Acquire returns; Release and loss behave as for Lock.
func (c *client) Acquire(ctx context.Context, ds driver.Session, name string, limit int, opts driver.LockOptions) (driver.Held, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("zkcoord: semaphore %q: session does not belong to this client", name)
	}
	if limit < 1 {
		return nil, fmt.Errorf("zkcoord: semaphore %q: limit %d, want at least 1", name, limit)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	dir := c.recipePath("semaphore", name)
	node, token, err := s.enqueue(ctx, dir, kindSem, []byte(s.id))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: semaphore %q: %w", name, err)
	}
	h, err := s.acquirePermit(ctx, dir, node, token, limit, opts.Try)
	if err != nil {
		return nil, fmt.Errorf("zkcoord: semaphore %q: %w", name, s.dequeue(ctx, node, err))
	}
	return h, nil
}

// acquirePermit waits until node is among the first limit contenders of dir.
func (s *session) acquirePermit(ctx context.Context, dir, node string, token int64, limit int, try bool) (*held, error) {
	me := node[len(dir)+1:]
	for {
		children, err := s.children(ctx, dir)
		if err != nil {
			return nil, err
		}
		q := queueOf(children, kindSem)
		i := indexOfEntry(q, me)
		switch {
		case i < 0:
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("contender node %s was deleted by someone else: %w", node, coord.ErrLockLost)
		case i < limit:
			if i < len(q)-1 {
				// Someone queued behind may be watching this node as a
				// waiter: tell it (its getData watch fires).
				if err := s.markHolder(ctx, node); err != nil {
					return nil, err
				}
			}
			return s.hold(ctx, node, token)
		case try:
			return nil, fmt.Errorf("%w (all %d permit(s) taken)", coord.ErrLocked, limit)
		}
		var watch []string
		if i == limit {
			for _, e := range q[:limit] {
				watch = append(watch, dir+"/"+e.name)
			}
		} else {
			watch = []string{dir + "/" + q[i-1].name}
		}
		chs, again, err := s.watchWaiter(ctx, watch, i > limit)
		if err != nil {
			return nil, err
		}
		if again {
			continue
		}
		if err := s.waitEvent(ctx, fmt.Sprintf("%d permit holder(s) of %s", len(chs), dir), chs...); err != nil {
			return nil, err
		}
	}
}

// watchWaiter arms getData watches on paths. It reports again (look at the
// queue again now) when one is gone or, with holderCheck, when the watched
// predecessor has already become a holder (its version is above zero).
func (s *session) watchWaiter(ctx context.Context, paths []string, holderCheck bool) ([]<-chan zk.Event, bool, error) {
	chs := make([]<-chan zk.Event, 0, len(paths))
	for _, p := range paths {
		ch, st, err := s.watchNode(ctx, p)
		if err != nil {
			return nil, false, err
		}
		if ch == nil || holderCheck && st.Version > 0 {
			return nil, true, nil
		}
		chs = append(chs, ch)
	}
	return chs, false, nil
}

// markHolder writes to the session's own node so that a waiter watching it
// as its predecessor looks at the queue again.
func (s *session) markHolder(ctx context.Context, node string) error {
	for {
		_, err := call(ctx, s, func() (*zk.Stat, error) { return s.conn.Set(node, []byte(s.id), -1) }, nil)
		switch {
		case err == nil:
			return nil
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return err
			}
		default:
			return fmt.Errorf("mark %s as holder: %w", node, err)
		}
	}
}
