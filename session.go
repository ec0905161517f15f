package coord

import (
	"context"
	"time"

	"github.com/coordkit/coord/driver"
)

// Session is a liveness lease on the backend: every ownership (lock,
// leadership, queue claim, registration) belongs to one. It is renewed in the
// background; when it cannot be renewed before its TTL runs out, or the
// server says it expired, it is lost: Done closes, Err wraps
// ErrSessionExpired, and everything it owned reports loss. Closing it releases
// what it owns at once.
//
// Per backend: etcd — a lease with keep-alive; ZooKeeper — the connection's
// session (lost after the negotiated timeout without a server); Consul — a
// session with a TTL check (Consul itself invalidates it only after up to
// twice the TTL); Redis — a session key renewed by a heartbeat.
type Session struct {
	c *Client
	d driver.Session
}

// ID is the backend's identifier for the session.
func (s *Session) ID() string { return s.d.ID() }

// TTL is the session's time to live as granted by the backend.
func (s *Session) TTL() time.Duration { return s.d.TTL() }

// Done is closed when the session is closed or lost.
func (s *Session) Done() <-chan struct{} { return s.d.Done() }

// Err is nil while the session is live; then it wraps ErrSessionClosed or
// ErrSessionExpired.
func (s *Session) Err() error { return s.d.Err() }

// Close ends the session and releases everything it owns at once.
func (s *Session) Close(ctx context.Context) error { return s.d.Close(ctx) }

// Client returns the client the session was opened from.
func (s *Session) Client() *Client { return s.c }

// Driver returns the backend session, for recipe packages.
func (s *Session) Driver() driver.Session { return s.d }
