// Package driver defines the small interfaces a coord backend implements.
//
// A backend provides a Client that opens Sessions. Each recipe is an optional
// interface (Locker, ...) that the backend's Client implements when it supports
// that recipe; the portable packages under recipes/ discover it by type
// assertion, as database/sql does with its optional driver interfaces. New
// capabilities arrive as new interfaces, never as methods added to old ones.
//
// Users never call these interfaces directly; they use the coord package and
// the recipes. Backend authors run the conformance suite against their driver.
package driver

import (
	"context"
	"time"
)

// Client is a backend connection shared by every session opened from it.
type Client interface {
	// NewSession starts a session with the given configuration. The session is
	// kept alive in the background until it is closed or lost.
	NewSession(ctx context.Context, cfg SessionConfig) (Session, error)
	// Backend names the backend ("etcd", "zookeeper", "redis", "consul").
	Backend() string
	// Close releases the client's resources. It closes the native client only
	// when the driver created it (from a URL), never a client the user passed in.
	Close() error
}

// SessionConfig configures a new session.
type SessionConfig struct {
	// TTL is how long the session survives without a successful renewal.
	TTL time.Duration
	// LockDelay is Consul's lock-delay (the time a lock stays unacquirable after
	// its holder's session was invalidated). Other backends ignore it.
	LockDelay time.Duration
}

// Session is a liveness lease on the backend. Everything a session owns is
// released when it closes or is lost.
type Session interface {
	// ID identifies the session on the backend (lease ID, ZooKeeper session ID,
	// Consul session ID, Redis session key suffix).
	ID() string
	// TTL is the session's time to live as granted by the backend.
	TTL() time.Duration
	// Done is closed when the session is closed or lost.
	Done() <-chan struct{}
	// Err is nil while the session is live; afterwards it wraps
	// coord.ErrSessionClosed or coord.ErrSessionExpired.
	Err() error
	// Close ends the session at once and releases everything it owns on the
	// server. Calling Close again returns nil.
	Close(ctx context.Context) error
}

// Locker is implemented by a Client that provides exclusive locks.
type Locker interface {
	// Lock acquires name for session s and returns the held ownership. With
	// opts.Try it returns coord.ErrLocked at once when another contender holds
	// or queues ahead for name. It blocks otherwise until acquired, ctx is done
	// (a wrapped ctx.Err()), or s is lost (a wrapped s.Err()). On every error it
	// removes the contender state it created. name has been validated by the
	// caller with coord.ValidateName.
	Lock(ctx context.Context, s Session, name string, opts LockOptions) (Held, error)
}

// LockOptions modifies a Lock call.
type LockOptions struct {
	// Try makes Lock fail with coord.ErrLocked instead of waiting.
	Try bool
}

// Held is an ownership acquired by a recipe: a lock, a leadership term, a claim.
type Held interface {
	// Token is the fencing token: strictly greater for each successive holder
	// of the same name.
	Token() uint64
	// Done is closed when the ownership ends, by Release or by loss.
	Done() <-chan struct{}
	// Err is nil while held; coord.ErrNotHeld after Release; an error wrapping
	// coord.ErrLockLost (and the cause, e.g. coord.ErrSessionExpired) after loss.
	Err() error
	// Release gives the ownership up on the server. It returns an error wrapping
	// coord.ErrNotHeld when the ownership had already ended.
	Release(ctx context.Context) error
}

// Inspector is implemented by a Client that can report the contender state it
// keeps on the server. The conformance suite uses it to prove that failed and
// cancelled calls leave nothing behind.
type Inspector interface {
	// Contenders returns the number of contender entries (held or waiting) that
	// the recipe ("lock", ...) keeps for name on the server.
	Contenders(ctx context.Context, recipe, name string) (int, error)
}

// Expirer is implemented by a Client that can make the server expire a
// session, as if its process had stopped renewing it (etcd lease revoke,
// Consul session destroy, Redis session key deletion). Used by tests and the
// conformance suite.
type Expirer interface {
	// ExpireSession ends the session with the given ID on the server side.
	ExpireSession(ctx context.Context, id string) error
}
