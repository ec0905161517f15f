package zkcoord

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// shared follows the ZooKeeper session of a user's connection (New): one
// watchdog per ZooKeeper session, replaced when go-zookeeper opens a new one
// after an expiry.
type shared struct {
	conn    *zk.Conn
	timeout func() time.Duration
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu  sync.Mutex
	cur *watchdog
}

// samplePeriod is how often the state of a user's connection is read when
// its event channel was not handed to New.
const samplePeriod = 100 * time.Millisecond

func startShared(conn *zk.Conn, events <-chan zk.Event, timeout func() time.Duration) *shared {
	sh := &shared{conn: conn, timeout: timeout, quit: make(chan struct{})}
	if conn.State() == zk.StateHasSession {
		sh.cur = adopt(conn.SessionID(), timeout)
	}
	sh.wg.Add(1)
	go func() {
		defer sh.wg.Done()
		if events != nil {
			sh.pump(events)
		} else {
			sh.sample()
		}
	}()
	return sh
}

// pump reads the connection's events until the channel closes (the
// connection was closed) or the client is closed.
func (sh *shared) pump(events <-chan zk.Event) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				sh.feed(zk.StateDisconnected, 0, true)
				return
			}
			if ev.Type == zk.EventSession {
				sh.feed(ev.State, sh.conn.SessionID(), false)
			}
		case <-sh.quit:
			return
		}
	}
}

// sample reads the connection's state periodically, for a client whose
// application keeps the event channel.
func (sh *shared) sample() {
	t := time.NewTicker(samplePeriod)
	defer t.Stop()
	last, lastSID := zk.StateUnknown, int64(0)
	for {
		select {
		case <-t.C:
			st, sid := sh.conn.State(), sh.conn.SessionID()
			if st != last || sid != lastSID { // a new session ID alone is a loss too
				sh.feed(st, sid, false)
				last, lastSID = st, sid
			}
		case <-sh.quit:
			return
		}
	}
}

func (sh *shared) feed(state zk.State, sid int64, closed bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if closed {
		if sh.cur != nil {
			sh.cur.lose(fmt.Errorf("%w: the ZooKeeper connection was closed", coord.ErrSessionExpired))
		}
		return
	}
	if sh.cur == nil || sh.cur.Err() != nil {
		if state == zk.StateHasSession && sid != 0 {
			sh.cur = adopt(sid, sh.timeout)
		}
		return
	}
	sh.cur.observe(state, sid)
}

// current returns the watchdog of the connection's live session, if any.
func (sh *shared) current() *watchdog {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sid := sh.conn.SessionID()
	if sh.cur != nil && sh.cur.Err() == nil && sh.cur.SessionID() == sid {
		return sh.cur
	}
	if sh.cur != nil && sh.cur.Err() == nil {
		sh.cur.lose(fmt.Errorf("%w: ZooKeeper session %#x was replaced by %#x", coord.ErrSessionExpired, sh.cur.SessionID(), sid))
	}
	if sh.conn.State() == zk.StateHasSession && sid != 0 {
		sh.cur = adopt(sid, sh.timeout)
		return sh.cur
	}
	return nil
}

func (sh *shared) stop() {
	sh.once.Do(func() { close(sh.quit) })
	sh.wg.Wait()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.cur != nil {
		sh.cur.lose(fmt.Errorf("%w: the coord client was closed", coord.ErrSessionClosed))
	}
}

// newSharedSession starts a coord session on the user connection's current
// ZooKeeper session, waiting within ctx for go-zookeeper to have one.
func (c *client) newSharedSession(ctx context.Context) (driver.Session, error) {
	var wd *watchdog
	for wd = c.shared.current(); wd == nil; wd = c.shared.current() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("zkcoord: %s has no ZooKeeper session (state %s): %w: %w",
				c.desc, c.conn.State(), ctx.Err(), coord.ErrUnavailable)
		case <-time.After(50 * time.Millisecond):
		}
	}
	sid := wd.SessionID()
	s := c.newSession(c.conn, wd, sid, fmt.Sprintf("%#x-%d", sid, c.seq.Add(1)), c.opts.TTL)
	if !c.track(s) {
		return nil, fmt.Errorf("zkcoord: client is closed: %w", coord.ErrSessionClosed)
	}
	go s.monitor()
	return s, nil
}
