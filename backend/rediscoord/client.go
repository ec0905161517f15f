package rediscoord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// blockingPoolSize bounds the connections used by waiting calls (one per
// waiter blocked in BLPOP; pub/sub subscriptions of observers and barrier
// waiters also come from this client). They come from a pool of their own so
// that many waiters never starve the heartbeats of connections.
const blockingPoolSize = 256

// client is the driver.Client of the Redis backend.
type client struct {
	rdb    redis.UniversalClient // scripts and heartbeats
	blk    *redis.Client         // BLPOP of waiting calls, pub/sub subscriptions
	ownRdb bool                  // rdb was created from a URL: close it on Close
	ns     string
	opts   coord.Options
	addr   string

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
}

var (
	_ driver.Client    = (*client)(nil)
	_ driver.Locker    = (*client)(nil)
	_ driver.Inspector = (*client)(nil)
	_ driver.Expirer   = (*client)(nil)
)

// New returns a coord Client over rdb, the caller's own Redis client, which
// must be a *redis.Client (a standalone server, or a Sentinel-managed primary
// from redis.NewFailoverClient); Cluster and Ring clients are refused with an
// error wrapping coord.ErrUnsupported. rdb is not closed by the Client's
// Close. New opens a second, private connection pool with rdb's options for
// waiters blocked in BLPOP, so waiting Lock calls never take rdb's
// connections. New does no I/O.
//
// rdb's retries (MaxRetries) are used as configured; coord's scripts are safe
// to repeat except that a repeated release after a lost reply reports
// coord.ErrNotHeld. Clients opened from a URL disable go-redis retries.
func New(rdb redis.UniversalClient, opts ...coord.Option) (*coord.Client, error) {
	o := coord.ResolveOptions(opts...)
	if err := coord.ValidateNamespace(o.Namespace); err != nil {
		return nil, fmt.Errorf("rediscoord: %w", err)
	}
	c, err := newClient(rdb, false, o)
	if err != nil {
		return nil, err
	}
	return coord.NewClient(c, "redis://"+c.addr, opts...), nil
}

func newClient(rdb redis.UniversalClient, own bool, o coord.Options) (*client, error) {
	rc, ok := rdb.(*redis.Client)
	if !ok || rc == nil {
		return nil, fmt.Errorf("rediscoord: %T is not supported (want a *redis.Client: a standalone or Sentinel-managed primary): %w", rdb, coord.ErrUnsupported)
	}
	bo := *rc.Options()
	bo.PoolSize = blockingPoolSize
	bo.MinIdleConns = 0
	bo.MaxIdleConns = 0
	bo.MaxActiveConns = 0
	bo.MaxRetries = -1
	bo.ReadTimeout = -1 // deadlines come from each BLPOP's context
	bo.ContextTimeoutEnabled = true
	bo.MaxConcurrentDials = 0          // recomputed from PoolSize
	bo.PushNotificationProcessor = nil // the parent's is bound to its pool
	bo.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &client{
		rdb:      rdb,
		blk:      redis.NewClient(&bo),
		ownRdb:   own,
		ns:       o.Namespace,
		opts:     o,
		addr:     rc.Options().Addr,
		sessions: map[*session]struct{}{},
	}, nil
}

// Backend returns "redis".
func (c *client) Backend() string { return "redis" }

// Close ends the sessions still open on this client (releasing what they own,
// best effort within a second), closes the private blocking pool, and
// closes the Redis client when it was created from a URL.
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
	var wg sync.WaitGroup
	for _, s := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Close(ctx)
		}()
	}
	wg.Wait()
	err := c.blk.Close()
	if c.ownRdb {
		if e := c.rdb.Close(); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("rediscoord: close %s: %w", c.addr, err)
	}
	return nil
}

// Key layout (see lua/common.lua). A lock name is wrapped in braces: names
// cannot contain '{' or '}', so the suffixed keys of one lock (":fence",
// ":waiters") never collide with another name's lock key.
func (c *client) sessionPrefix() string       { return c.ns + ":session:" }
func (c *client) sessionKey(id string) string { return c.sessionPrefix() + id }
func (c *client) ownedKey(id string) string   { return c.sessionKey(id) + ":owned" }
func (c *client) lockBase(name string) string { return c.ns + ":lock:{" + name + "}" }
func wakeKey(base, wid string) string         { return base + ":wake:" + wid }

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// isHexID reports whether s is a non-empty lower-case hex ID, as randomID
// makes; session IDs from callers are checked with it before use in keys.
func isHexID(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// errUnavailable wraps a Redis error as coord.ErrUnavailable naming the server.
func (c *client) errUnavailable(err error) error {
	return fmt.Errorf("redis %s: %w: %w", c.addr, err, coord.ErrUnavailable)
}

func (c *client) track(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.sessions[s] = struct{}{}
	return true
}

func (c *client) untrack(s *session) {
	c.mu.Lock()
	delete(c.sessions, s)
	c.mu.Unlock()
}
