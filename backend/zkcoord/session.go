package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// session is a coord session over a ZooKeeper session: its own connection
// (owned, from Open) or a share of the user's connection (New).
type session struct {
	c     *client
	conn  *zk.Conn
	owned bool
	tr    *tracker // owned only
	wd    *watchdog
	sid   int64
	id    string
	ttl   time.Duration

	done    chan struct{}
	closing chan struct{}
	mu      sync.Mutex
	err     error
	helds   map[*held]struct{}
	nodes   map[string]struct{} // contender nodes this session created and has not deleted
	closeMu sync.Mutex          // serializes Close
}

var _ driver.Session = (*session)(nil)

func (c *client) newOwnedSession(ctx context.Context, ttl time.Duration) (driver.Session, error) {
	conn, tr, wd, err := c.dial(ctx, ttl)
	if err != nil {
		return nil, err
	}
	sid := wd.SessionID()
	s := c.newSession(conn, wd, sid, fmt.Sprintf("%#x", sid), tr.Timeout())
	s.owned, s.tr = true, tr
	if !c.track(s) {
		conn.Close()
		return nil, fmt.Errorf("zkcoord: client is closed: %w", coord.ErrSessionClosed)
	}
	go s.monitor()
	return s, nil
}

func (c *client) newSession(conn *zk.Conn, wd *watchdog, sid int64, id string, ttl time.Duration) *session {
	return &session{
		c: c, conn: conn, wd: wd, sid: sid, id: id, ttl: ttl,
		done:    make(chan struct{}),
		closing: make(chan struct{}),
		helds:   map[*held]struct{}{},
		nodes:   map[string]struct{}{},
	}
}

// track registers s with its client, unless the client is closed.
func (c *client) track(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.sessions == nil {
		c.sessions = map[*session]struct{}{}
	}
	c.sessions[s] = struct{}{}
	return true
}

func (c *client) untrack(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, s)
}

// monitor ends the session when its ZooKeeper session is lost. An owned
// connection is closed then: go-zookeeper would otherwise open a new session
// on it, which nothing of this coord session may use.
func (s *session) monitor() {
	select {
	case <-s.wd.Done():
		s.end(s.wd.Err())
		if s.owned {
			s.conn.Close()
			s.c.untrack(s)
		}
	case <-s.closing:
	}
}

// ID is the ZooKeeper session ID in hex (with a per-client suffix on a
// shared connection).
func (s *session) ID() string { return s.id }

// TTL is the session timeout the server granted (Open), or the client's TTL
// option (New).
func (s *session) TTL() time.Duration { return s.ttl }

// Done is closed when the session is closed or lost.
func (s *session) Done() <-chan struct{} { return s.done }

// Err wraps coord.ErrSessionClosed or coord.ErrSessionExpired once the
// session has ended.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// expired records that the ZooKeeper session is gone (learnt from a request)
// and ends the coord session now rather than when the monitor notices.
func (s *session) expired(err error) {
	s.wd.lose(err)
	s.end(s.wd.Err())
}

// end ends the session and every lock it holds, once.
func (s *session) end(err error) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.err = err
	helds := make([]*held, 0, len(s.helds))
	for h := range s.helds {
		helds = append(helds, h)
	}
	s.helds = map[*held]struct{}{}
	s.mu.Unlock()
	for _, h := range helds { // before Done closes: whoever sees Done sees its locks ended
		h.End(coord.Lost(err))
	}
	close(s.done)
	return true
}

// Close ends the session. An owned connection is closed, which makes the
// server delete every ephemeral node of the session at once; on a shared
// connection the session deletes the nodes it created.
func (s *session) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if !s.end(fmt.Errorf("zkcoord: session %s closed: %w", s.id, coord.ErrSessionClosed)) {
		return nil
	}
	close(s.closing)
	if s.owned {
		s.conn.Close()
		s.c.untrack(s)
		return nil
	}
	s.c.untrack(s)
	return s.deleteNodes(ctx)
}

// deleteNodes deletes the contender nodes still registered (shared
// connection only).
func (s *session) deleteNodes(ctx context.Context) error {
	s.mu.Lock()
	paths := make([]string, 0, len(s.nodes))
	for p := range s.nodes {
		paths = append(paths, p)
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range paths {
		if err := s.deleteNode(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zkcoord: session %s: %w", s.id, err)
	}
	return nil
}

// addNode and dropNode keep the set of contender nodes the session owns.
func (s *session) addNode(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[p] = struct{}{}
}

func (s *session) dropNode(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, p)
}

// deleteNode deletes one of the session's nodes (absent is fine). It waits
// for the answer within ctx only, not the session: it is cleanup.
func (s *session) deleteNode(ctx context.Context, p string) error {
	err := within(ctx, func() error { return s.conn.Delete(p, -1) })
	if err == nil || errors.Is(err, zk.ErrNoNode) {
		s.dropNode(p)
		return nil
	}
	if s.owned && (errors.Is(err, zk.ErrClosing) || errors.Is(err, zk.ErrConnectionClosed)) && s.Err() != nil {
		return nil // the connection is closed: the server drops the session's nodes
	}
	return fmt.Errorf("delete %s: %w", p, err)
}

// addHeld registers h for loss notification; false if the session ended.
func (s *session) addHeld(h *held) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.helds[h] = struct{}{}
	return true
}

func (s *session) dropHeld(h *held) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.helds, h)
}
