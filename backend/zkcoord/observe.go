package zkcoord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// Leader reads the first candidacy of name: its creation zxid (the term's
// token) and value. It returns an error wrapping coord.ErrNoLeader when
// there is no candidacy. It uses the client's connection, no session.
func (c *client) Leader(ctx context.Context, name string) (driver.LeaderInfo, error) {
	dir := c.recipePath("election", name)
	for {
		children, err := run(ctx, nil, func() ([]string, error) {
			ch, _, err := c.conn.Children(dir)
			return ch, err
		}, nil)
		if errors.Is(err, zk.ErrNoNode) {
			children, err = nil, nil
		}
		if err != nil {
			return driver.LeaderInfo{}, fmt.Errorf("zkcoord: leader %q: %w", name, unavailable(err))
		}
		q := queueOf(children, kindElect)
		if len(q) == 0 {
			return driver.LeaderInfo{}, fmt.Errorf("zkcoord: leader %q: %w", name, coord.ErrNoLeader)
		}
		type res struct {
			data []byte
			st   *zk.Stat
		}
		r, err := run(ctx, nil, func() (res, error) {
			d, st, err := c.conn.Get(dir + "/" + q[0].name)
			return res{d, st}, err
		}, nil)
		switch {
		case err == nil:
			return driver.LeaderInfo{Token: uint64(r.st.Czxid), Value: r.data}, nil
		case errors.Is(err, zk.ErrNoNode):
			continue // the leader resigned since the listing
		default:
			return driver.LeaderInfo{}, fmt.Errorf("zkcoord: leader %q: %w", name, unavailable(err))
		}
	}
}

// unavailable marks connection failures with coord.ErrUnavailable.
func unavailable(err error) error {
	if isConnErr(err) {
		return fmt.Errorf("%w: %w", coord.ErrUnavailable, err)
	}
	return err
}

// Observe follows the leader of name with ZooKeeper's one-shot watches, on
// the client's connection. Each watch is armed by the very read whose answer
// is delivered (getChildren with a watch on the election node, getData with
// a watch on the leading candidacy), so a change after that read always
// fires a watch and is read again: once changes stop, the last delivery is
// the current leader. Only a watch that fired is re-armed, before the state
// is read again; unchanged states are not delivered twice.
//
// go-zookeeper keeps watches across reconnections; when it drops them (an
// expired connection session) or a request fails on a dropped connection,
// Observe pauses briefly and reads everything again. It returns on ctx (a
// wrapped ctx.Err()), when the client is closed, or on a server error other
// than a connection failure (e.g. no read permission).
func (c *client) Observe(ctx context.Context, name string, fn func(driver.LeaderInfo)) error {
	dir := c.recipePath("election", name)
	var (
		childCh <-chan zk.Event // fires on a change of dir's children (or dir's creation)
		headCh  <-chan zk.Event // fires on a change of the head candidacy
		head    string          // the head candidacy that headCh watches
		cur     driver.LeaderInfo
		sent    bool
		q       []entry
	)
	fail := func(err error) error {
		if c.isClosed() {
			return fmt.Errorf("zkcoord: observe %q: client closed: %w", name, coord.ErrSessionClosed)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("zkcoord: observe %q: %w", name, ctx.Err())
		}
		if !isConnErr(err) {
			return fmt.Errorf("zkcoord: observe %q: %w", name, err)
		}
		childCh, headCh, head = nil, nil, ""
		if err := sleepCtx(ctx, retryPause); err != nil {
			return fmt.Errorf("zkcoord: observe %q: %w", name, err)
		}
		return nil
	}
	for {
		if childCh == nil {
			children, ch, err := c.watchChildren(ctx, dir)
			if err != nil {
				if err := fail(err); err != nil {
					return err
				}
				continue
			}
			childCh, q = ch, queueOf(children, kindElect)
			if len(q) == 0 || q[0].name != head {
				headCh, head = nil, ""
			}
		}
		next := driver.LeaderInfo{}
		ready := true
		if len(q) > 0 {
			if headCh == nil {
				type res struct {
					data []byte
					st   *zk.Stat
					ch   <-chan zk.Event
				}
				p := dir + "/" + q[0].name
				r, err := run(ctx, nil, func() (res, error) {
					d, st, ch, err := c.conn.GetW(p)
					return res{d, st, ch}, err
				}, nil)
				switch {
				case err == nil:
					headCh, head = r.ch, q[0].name
					next = driver.LeaderInfo{Token: uint64(r.st.Czxid), Value: r.data}
				case errors.Is(err, zk.ErrNoNode):
					ready = false // it left after the listing: childCh will fire
				default:
					if err := fail(err); err != nil {
						return err
					}
					continue
				}
			} else {
				next = cur // the head and its watch are unchanged
			}
		}
		if ready && (!sent || next.Token != cur.Token || !bytes.Equal(next.Value, cur.Value)) {
			cur, sent = next, true
			fn(driver.LeaderInfo{Token: next.Token, Value: append([]byte(nil), next.Value...)})
		}
		select {
		case ev := <-childCh:
			childCh = nil
			if ev.Type == zk.EventNotWatching {
				if err := fail(ev.Err); err != nil {
					return err
				}
			}
		case ev := <-headCh:
			headCh, head = nil, ""
			if ev.Type == zk.EventNotWatching {
				if err := fail(ev.Err); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("zkcoord: observe %q: %w", name, ctx.Err())
		}
	}
}

// watchChildren lists dir with a child watch; when dir does not exist yet
// it returns no children and an exists watch that fires on its creation.
func (c *client) watchChildren(ctx context.Context, dir string) ([]string, <-chan zk.Event, error) {
	type res struct {
		children []string
		ch       <-chan zk.Event
	}
	for {
		r, err := run(ctx, nil, func() (res, error) {
			children, _, ch, err := c.conn.ChildrenW(dir)
			return res{children, ch}, err
		}, nil)
		if !errors.Is(err, zk.ErrNoNode) {
			return r.children, r.ch, err
		}
		r, err = run(ctx, nil, func() (res, error) {
			ok, _, ch, err := c.conn.ExistsW(dir)
			if err == nil && ok {
				return res{}, errRetry // created meanwhile: list it
			}
			return res{nil, ch}, err
		}, nil)
		if errors.Is(err, errRetry) {
			continue
		}
		return nil, r.ch, err
	}
}

var errRetry = errors.New("zkcoord: retry")

// isClosed reports whether the client was closed.
func (c *client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// sleepCtx waits d or until ctx is done (then a wrapped ctx.Err()).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
