// Package zkcoord is coord's ZooKeeper backend (ZooKeeper 3.5 or later).
//
// A coord session is a ZooKeeper session. Open ("zk://[user:pass@]h1:2181[,h2…][/chroot]")
// gives every coord session its own connection and so its own ZooKeeper
// session, with the session's TTL as the requested session timeout (the
// server clamps it to its minSessionTimeout..maxSessionTimeout, by default
// 2..20 ticks; Session.TTL reports what it granted). New wraps a connection
// the application already has, and then all coord sessions of the client ride
// on that connection's single ZooKeeper session.
//
// Keys live under /<chroot>/<namespace>/<recipe>/<name>. Locks follow
// Curator's InterProcessMutex: protected ephemeral-sequential contender nodes,
// each waiter watching only its predecessor (herd-free, FIFO). The fencing
// token is the contender node's creation zxid, which ZooKeeper's replicated
// log makes strictly increasing, across leader changes and even if the lock's
// parent node is deleted and recreated.
//
// Loss: a session is lost when ZooKeeper reports it expired, or when no server
// has answered for the whole negotiated session timeout (the client-side
// deadline Curator also applies; the server expires the session at about the
// same time). The session is the source of truth for the locks it holds: it
// ends them all at once when it ends, and a held lock sets no watch of its
// own. A contender node deleted by hand while its session lives (outside the
// contract: that breaks the lock, and the next waiter proceeds) is noticed at
// Unlock, which then reports ErrNotHeld. go-zookeeper's log output is discarded.
package zkcoord

import (
	"context"
	"crypto/tls"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// client is the driver.Client of the ZooKeeper backend.
type client struct {
	opts coord.Options
	root string   // absolute path of the namespace: /<chroot>/<ns>
	acl  []zk.ACL // ACL of every node coord creates

	// conn serves client-level calls (Contenders, chroot creation): the
	// user's connection (New) or one coord opened (Open).
	conn *zk.Conn

	// Open only: how to make a connection per session.
	owned   bool
	servers []string
	auth    []byte // digest "user:pass", nil without credentials
	tls     *tls.Config
	desc    string // the URL, redacted, for messages

	shared *shared // New only

	mu       sync.Mutex
	sessions map[*session]struct{} // live sessions, closed with the client
	closed   bool
	seq      atomic.Uint64
}

var (
	_ driver.Client    = (*client)(nil)
	_ driver.Locker    = (*client)(nil)
	_ driver.Inspector = (*client)(nil)
	_ driver.Expirer   = (*client)(nil)
)

// New returns a coord Client over conn, an established go-zookeeper
// connection the caller keeps owning: closing the Client never closes conn.
//
// Every coord session of this client rides on conn's one ZooKeeper session.
// Closing a coord session deletes the nodes it created; when the ZooKeeper
// session is lost every coord session of the client is lost with it, and new
// coord sessions use the session go-zookeeper opens next.
//
// events should be the channel zk.Connect returned for conn: the client then
// reads it (until it is closed) to learn of disconnections and expiry at
// once. Pass nil when the application reads that channel itself; the client
// then samples conn's state every 100ms instead.
//
// Set coord.WithTTL to the session timeout conn was opened with: the client
// counts a session as lost when no server has answered for that long
// (go-zookeeper does not report the timeout the server granted). Keys go
// under /<namespace> (coord.WithNamespace, default "coord"); conn's ACL
// credentials (AddAuth) apply, and nodes are created with zk.WorldACL(zk.PermAll).
func New(conn *zk.Conn, events <-chan zk.Event, opts ...coord.Option) (*coord.Client, error) {
	if conn == nil {
		return nil, fmt.Errorf("zkcoord: New: nil *zk.Conn")
	}
	o := coord.ResolveOptions(opts...)
	if err := coord.ValidateNamespace(o.Namespace); err != nil {
		return nil, fmt.Errorf("zkcoord: %w", err)
	}
	c := &client{
		opts: o,
		root: "/" + o.Namespace,
		acl:  zk.WorldACL(zk.PermAll),
		conn: conn,
		desc: "zookeeper connection " + conn.Server(),
	}
	c.shared = startShared(conn, events, func() time.Duration { return o.TTL })
	return coord.NewClient(c, "zk (user connection)", opts...), nil
}

// Backend returns "zookeeper".
func (c *client) Backend() string { return "zookeeper" }

// Close closes the sessions still open and the connections coord opened
// (none for New).
func (c *client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	open := make([]*session, 0, len(c.sessions))
	for s := range c.sessions {
		open = append(open, s)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.DialTimeout)
	defer cancel()
	for _, s := range open {
		_ = s.Close(ctx)
	}
	if c.shared != nil {
		c.shared.stop()
	}
	if c.owned {
		c.conn.Close()
	}
	return nil
}

// NewSession starts a coord session: its own ZooKeeper session with timeout
// cfg.TTL (Open), or a share of the user connection's session (New).
func (c *client) NewSession(ctx context.Context, cfg driver.SessionConfig) (driver.Session, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("zkcoord: client is closed: %w", coord.ErrSessionClosed)
	}
	if c.owned {
		return c.newOwnedSession(ctx, cfg.TTL)
	}
	return c.newSharedSession(ctx)
}

// recipePath is the node under which recipe keeps name's state.
func (c *client) recipePath(recipe, name string) string {
	return c.root + "/" + recipe + "/" + name
}

// ensurePath creates p and its missing ancestors as persistent nodes. coord
// never deletes them: sequence numbers and ordering must stay stable.
func ensurePath(conn *zk.Conn, p string, acl []zk.ACL) error {
	if p == "/" || p == "" {
		return nil
	}
	if _, err := conn.Create(p, nil, 0, acl); err == nil || err == zk.ErrNodeExists {
		return nil
	} else if err != zk.ErrNoNode {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if err := ensurePath(conn, path.Dir(p), acl); err != nil {
		return err
	}
	if _, err := conn.Create(p, nil, 0, acl); err != nil && err != zk.ErrNodeExists {
		return fmt.Errorf("create %s: %w", p, err)
	}
	return nil
}

// validChroot checks a URL path used as a chroot.
func validChroot(p string) error {
	if p == "" {
		return nil
	}
	if err := coord.ValidateName(p); err != nil {
		return err
	}
	if p == "zookeeper" || strings.HasPrefix(p, "zookeeper/") {
		return fmt.Errorf("/zookeeper is ZooKeeper's own subtree")
	}
	return nil
}
