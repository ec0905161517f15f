package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

var _ driver.Elector = (*client)(nil)

// Campaign enters a candidacy for name and blocks until it leads (the
// recipe of Curator's LeaderSelector, ordered like the lock): the call
// creates a protected ephemeral-sequential node "_c_<guid>-elect-N" under
// /<ns>/election/<name> holding value; the lowest candidacy leads, and each
// other candidate watches only its predecessor (getData watch), so a
// resignation wakes one candidate (herd-free, FIFO).
//
// Leadership is claimed only when the first candidacy of a fresh listing is
// this call's own node (its GUID is this call's) and a getData on that node
// shows it is owned by this call's ZooKeeper session; the same getData arms
// the watch that ends the term if the node disappears. The term's token is
// the node's creation zxid, strictly increasing across terms. Every failure
// (ctx done, session lost, node deleted by someone else) deletes the
// candidacy before Campaign returns.
func (c *client) Campaign(ctx context.Context, ds driver.Session, name string, value []byte) (driver.Term, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("zkcoord: campaign %q: session does not belong to this client", name)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	dir := c.recipePath("election", name)
	value = append([]byte(nil), value...)
	node, token, err := s.enqueue(ctx, dir, kindElect, value)
	if err != nil {
		return nil, fmt.Errorf("zkcoord: campaign %q: %w", name, err)
	}
	t, err := s.lead(ctx, dir, node, token, value)
	if err != nil {
		return nil, fmt.Errorf("zkcoord: campaign %q: %w", name, s.dequeue(ctx, node, err))
	}
	return t, nil
}

// lead waits until node is the first candidacy of dir and returns the term.
func (s *session) lead(ctx context.Context, dir, node string, token int64, value []byte) (*term, error) {
	me := node[len(dir)+1:]
	for {
		children, err := s.children(ctx, dir)
		if err != nil {
			return nil, err
		}
		q := queueOf(children, kindElect)
		i := indexOfEntry(q, me)
		if i < 0 {
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("candidacy %s was deleted by someone else: %w", node, coord.ErrLeadershipLost)
		}
		if i == 0 {
			return s.claim(ctx, node, token, value)
		}
		pred := dir + "/" + q[i-1].name
		wch, _, err := s.watchNode(ctx, pred)
		if err != nil {
			return nil, err
		}
		if wch == nil {
			continue
		}
		if err := s.waitEvent(ctx, pred, wch); err != nil {
			return nil, err
		}
	}
}

// claim checks that the leading node is this session's own and turns it
// into a term watched for deletion.
func (s *session) claim(ctx context.Context, node string, token int64, value []byte) (*term, error) {
	wch, st, err := s.watchNode(ctx, node)
	if err != nil {
		return nil, err
	}
	if wch == nil {
		if err := s.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("candidacy %s was deleted by someone else: %w", node, coord.ErrLeadershipLost)
	}
	if st.EphemeralOwner != s.sid || st.Czxid != token {
		return nil, fmt.Errorf("leading candidacy %s belongs to ZooKeeper session %#x (czxid %d), not to this one (%#x, %d): %w",
			node, st.EphemeralOwner, st.Czxid, s.sid, token, coord.ErrCorrupt)
	}
	t := &term{Ownership: driver.NewOwnership(), s: s, path: node, token: uint64(token), value: value, version: st.Version}
	if err := s.Err(); err != nil {
		return nil, err
	}
	go t.watch(wch)
	return t, nil
}

// term is a leadership: the session's candidacy node at the head of the
// election's queue.
type term struct {
	*driver.Ownership
	s         *session
	path      string
	token     uint64
	releasing atomic.Bool

	mu      sync.Mutex // serializes Proclaim
	value   []byte
	version int32
}

var _ driver.Term = (*term)(nil)

// Token is the candidacy node's creation zxid.
func (t *term) Token() uint64 { return t.token }

// Value returns the latest value this term proclaimed.
func (t *term) Value() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.value...)
}

// watch ends the term with coord.LostLeadership when the session ends or
// the node is deleted by anyone but Release. It returns when the term ends.
func (t *term) watch(wch <-chan zk.Event) {
	for {
		select {
		case ev := <-wch:
			switch ev.Type {
			case zk.EventNodeDeleted:
				if t.releasing.Load() {
					wch = nil // Release ends the term
					continue
				}
				t.s.dropNode(t.path)
				cause := t.s.Err()
				if cause == nil {
					cause = fmt.Errorf("zkcoord: candidacy %s was deleted by someone else", t.path)
				}
				t.End(coord.LostLeadership(cause))
				return
			case zk.EventNodeDataChanged: // Proclaim: watch again
				ch, _, err := t.s.watchNode(context.Background(), t.path)
				switch {
				case err != nil:
					wch = nil // the session ended: the next case reports it
				case ch == nil && !t.releasing.Load():
					t.s.dropNode(t.path)
					t.End(coord.LostLeadership(fmt.Errorf("zkcoord: candidacy %s was deleted by someone else", t.path)))
					return
				default:
					wch = ch
				}
			default: // the watch ended with the connection or the session
				wch = nil
			}
		case <-t.s.Done():
			t.End(coord.LostLeadership(t.s.Err()))
			return
		case <-t.Done():
			return
		}
	}
}

// Proclaim replaces the candidacy's value if the node still exists with the
// version this term last wrote (compare-and-set). A version moved by a
// Proclaim that gave up but went through is re-read and, if the node is
// still this session's, written again. It fails with coord.ErrNotLeader once
// the term has ended or the node is gone.
func (t *term) Proclaim(ctx context.Context, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.Err(); err != nil {
		return fmt.Errorf("zkcoord: proclaim: %w (%w)", coord.ErrNotLeader, err)
	}
	value = append([]byte(nil), value...)
	version := t.version
	for attempt := 0; ; attempt++ {
		st, err := call(ctx, t.s, func() (*zk.Stat, error) { return t.s.conn.Set(t.path, value, version) }, nil)
		switch {
		case err == nil:
			t.value, t.version = value, st.Version
			return nil
		case errors.Is(err, zk.ErrNoNode):
			t.s.dropNode(t.path)
			cause := t.s.Err()
			if cause == nil {
				cause = fmt.Errorf("zkcoord: candidacy %s is gone", t.path)
			}
			t.End(coord.LostLeadership(cause))
			return fmt.Errorf("zkcoord: proclaim: %w (%w)", coord.ErrNotLeader, t.Err())
		case errors.Is(err, zk.ErrBadVersion) && attempt < 3:
			st, err := call(ctx, t.s, func() (*zk.Stat, error) {
				ok, st, err := t.s.conn.Exists(t.path)
				if err == nil && !ok {
					return nil, nil
				}
				return st, err
			}, nil)
			if err != nil {
				return fmt.Errorf("zkcoord: proclaim: %w", err)
			}
			if st == nil || st.EphemeralOwner != t.s.sid {
				continue // ErrNoNode or a foreign node: the Set reports it
			}
			version = st.Version
		case isConnErr(err) && t.s.Err() == nil:
			if err := pause(ctx, t.s); err != nil {
				return fmt.Errorf("zkcoord: proclaim: %w", err)
			}
		default:
			if e := t.Err(); e != nil {
				return fmt.Errorf("zkcoord: proclaim: %w (%w)", coord.ErrNotLeader, e)
			}
			return fmt.Errorf("zkcoord: proclaim: %w", err)
		}
	}
}

// Release resigns: it deletes the candidacy and, once the server confirmed
// the delete, ends the term with coord.ErrNotHeld; the next candidate (only
// it is watching) takes over. A Release that cannot reach the server leaves
// the term held. It returns an error wrapping coord.ErrNotHeld if the term
// had already ended.
func (t *term) Release(ctx context.Context) error {
	if err := t.Err(); err != nil {
		return fmt.Errorf("zkcoord: resign %s: %w", t.path, notHeld(err))
	}
	t.releasing.Store(true)
	released := func() {
		t.s.dropNode(t.path)
		t.End(coord.ErrNotHeld)
	}
	late := func(_ struct{}, err error) {
		if err == nil {
			released()
		}
	}
	_, err := call(ctx, t.s, func() (struct{}, error) { return struct{}{}, t.s.conn.Delete(t.path, -1) }, late)
	switch {
	case err == nil:
		released()
		return nil
	case errors.Is(err, zk.ErrNoNode):
		t.s.dropNode(t.path)
		cause := t.s.Err()
		if cause == nil {
			cause = fmt.Errorf("zkcoord: candidacy %s was already gone", t.path)
		}
		t.End(coord.LostLeadership(cause))
		return fmt.Errorf("zkcoord: resign %s: %w", t.path, notHeld(t.Err()))
	default:
		if e := t.Err(); e != nil {
			return fmt.Errorf("zkcoord: resign %s: %w", t.path, notHeld(e))
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.releasing.Store(false)
		}
		return fmt.Errorf("zkcoord: resign %s: %w", t.path, err)
	}
}
