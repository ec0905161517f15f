// Package lock provides distributed mutual exclusion on every coord backend.
//
// A Mutex belongs to a session and a name. Lock blocks until the caller holds
// the name and returns a Guard carrying a fencing token and a loss channel:
//
//	m, _ := lock.NewMutex(session, "nightly-report")
//	g, err := m.Lock(ctx)
//	if err != nil { ... }
//	defer g.Unlock(ctx)
//	write(resource, g.Token()) // let the resource reject stale holders
//
// Guarantees: while sessions are live, at most one holder per name. A holder
// whose session is lost sees Guard.Done close and Guard.Err wrap ErrLockLost;
// it never silently believes it still holds the lock. Each successive holder
// of a name gets a strictly greater Token. Waiters wake on their
// predecessor's release (herd-free) and are served in FIFO order on every
// backend (etcd and ZooKeeper: each waiter watches only its predecessor;
// Consul: a blocking query on the predecessor; Redis: a waiter queue whose
// head is woken by the release script). Mutexes are not reentrant: two
// Mutexes of one session on one name exclude each other.
//
// Limits: a lock is a lease, not a guarantee that the holder's work finished
// alone. A holder paused longer than its TTL (GC, SIGSTOP) loses the lock
// while it still runs; only the fencing token, checked by the resource,
// protects against that. On Redis the token and the lock live on one primary
// and are lost on an asynchronous failover.
package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Errors re-exported from coord for callers of this package.
var (
	ErrLocked         = coord.ErrLocked
	ErrNotHeld        = coord.ErrNotHeld
	ErrLockLost       = coord.ErrLockLost
	ErrSessionExpired = coord.ErrSessionExpired
	ErrSessionClosed  = coord.ErrSessionClosed
)

// Mutex is an exclusive lock on one name, owned by one session.
type Mutex struct {
	s    *coord.Session
	name string
	l    driver.Locker
}

// NewMutex returns a Mutex for name in session s. It fails with
// coord.ErrInvalidName for a name the backends cannot store, and with
// coord.ErrUnsupported if the backend has no lock.
func NewMutex(s *coord.Session, name string) (*Mutex, error) {
	l, err := driverFor[driver.Locker](s, name, "lock")
	if err != nil {
		return nil, err
	}
	return &Mutex{s: s, name: name, l: l}, nil
}

// Name returns the lock's name.
func (m *Mutex) Name() string { return m.name }

// Lock blocks until the lock is held, ctx is done, or the session is lost.
// It returns a wrapped ctx.Err() or session error in the latter cases, after
// removing its place in the queue.
func (m *Mutex) Lock(ctx context.Context) (*Guard, error) {
	return m.acquire(ctx, driver.LockOptions{})
}

// TryLock acquires the lock if it is free, or returns ErrLocked at once.
func (m *Mutex) TryLock(ctx context.Context) (*Guard, error) {
	return m.acquire(ctx, driver.LockOptions{Try: true})
}

func (m *Mutex) acquire(ctx context.Context, o driver.LockOptions) (*Guard, error) {
	return acquireWith(ctx, m.s, m.name, func(ctx context.Context) (driver.Held, error) {
		return m.l.Lock(ctx, m.s.Driver(), m.name, o)
	})
}

// Guard is a held lock. Its Done channel closes when the lock is released or
// lost; Err tells which.
type Guard struct {
	h    driver.Held
	name string
}

// Token is the fencing token of this holding: strictly greater than every
// earlier holder's token for the same name.
func (g *Guard) Token() coord.Token { return coord.Token(g.h.Token()) }

// Name returns the lock's name.
func (g *Guard) Name() string { return g.name }

// Done is closed when the lock is released or lost.
func (g *Guard) Done() <-chan struct{} { return g.h.Done() }

// Err is nil while the lock is held, ErrNotHeld after Unlock, and an error
// wrapping ErrLockLost and its cause (e.g. ErrSessionExpired) after a loss.
func (g *Guard) Err() error { return g.h.Err() }

// Unlock releases the lock on the server. It returns an error wrapping
// ErrNotHeld when the lock was already released or lost.
func (g *Guard) Unlock(ctx context.Context) error {
	if err := g.h.Release(ctx); err != nil {
		return fmt.Errorf("unlock %q: %w", g.name, err)
	}
	return nil
}

// Locker is anything Do can acquire: a *Mutex, or a *RWMutex as a writer.
type Locker interface {
	Lock(ctx context.Context) (*Guard, error)
}

// Do acquires m, runs fn with a context that is cancelled if the lock is lost,
// and releases the lock when fn returns. fn's error is returned; if the lock
// was lost while fn ran, the returned error also wraps ErrLockLost.
func Do(ctx context.Context, m Locker, fn func(ctx context.Context) error) (err error) {
	g, err := m.Lock(ctx)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-g.Done():
			cancel(g.Err())
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-watcherDone
		cancel(nil)
		lost := g.Err()
		uerr := g.Unlock(context.WithoutCancel(ctx))
		switch {
		case lost != nil && !errors.Is(lost, ErrNotHeld):
			err = errors.Join(err, lost)
		case uerr != nil:
			err = errors.Join(err, uerr)
		}
	}()
	return fn(fctx)
}
