package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// RWMutex is a read-write lock on one name, owned by one session: any number
// of readers hold it together, a writer holds it alone. Waiters are served in
// arrival order on etcd, ZooKeeper, Consul and Redis, so a waiting writer is
// not starved by readers that come after it. Guards carry fencing tokens and
// loss channels exactly as Mutex's do; a writer's token is greater than every
// earlier holder's.
type RWMutex struct {
	s    *coord.Session
	name string
	l    driver.RWLocker
}

// NewRWMutex returns a read-write lock for name in session s.
func NewRWMutex(s *coord.Session, name string) (*RWMutex, error) {
	l, err := driverFor[driver.RWLocker](s, name, "read-write lock")
	if err != nil {
		return nil, err
	}
	return &RWMutex{s: s, name: name, l: l}, nil
}

// Name returns the lock's name.
func (m *RWMutex) Name() string { return m.name }

// Lock acquires the lock as a writer, blocking like Mutex.Lock.
func (m *RWMutex) Lock(ctx context.Context) (*Guard, error) { return m.acquire(ctx, true, false) }

// TryLock acquires the lock as a writer if it is free, or returns ErrLocked.
func (m *RWMutex) TryLock(ctx context.Context) (*Guard, error) { return m.acquire(ctx, true, true) }

// RLock acquires the lock as a reader, blocking while a writer holds it or
// waits ahead of the caller.
func (m *RWMutex) RLock(ctx context.Context) (*Guard, error) { return m.acquire(ctx, false, false) }

// TryRLock acquires the lock as a reader if no writer holds or awaits it, or
// returns ErrLocked.
func (m *RWMutex) TryRLock(ctx context.Context) (*Guard, error) {
	return m.acquire(ctx, false, true)
}

func (m *RWMutex) acquire(ctx context.Context, write, try bool) (*Guard, error) {
	return acquireWith(ctx, m.s, m.name, func(ctx context.Context) (driver.Held, error) {
		return m.l.RWLock(ctx, m.s.Driver(), m.name, write, driver.LockOptions{Try: try})
	})
}

// Semaphore admits at most Limit holders of one name at a time. A holder
// whose session is lost frees its permit at once. Every user of a name must
// use the same limit.
type Semaphore struct {
	s     *coord.Session
	name  string
	limit int
	l     driver.Semaphorer
}

// NewSemaphore returns a semaphore of limit permits for name in session s.
func NewSemaphore(s *coord.Session, name string, limit int) (*Semaphore, error) {
	if limit < 1 {
		return nil, fmt.Errorf("lock: semaphore %q: limit %d, want at least 1", name, limit)
	}
	l, err := driverFor[driver.Semaphorer](s, name, "semaphore")
	if err != nil {
		return nil, err
	}
	return &Semaphore{s: s, name: name, limit: limit, l: l}, nil
}

// Name returns the semaphore's name.
func (m *Semaphore) Name() string { return m.name }

// Limit returns the number of permits.
func (m *Semaphore) Limit() int { return m.limit }

// Acquire takes a permit, blocking until one is free, ctx is done or the
// session is lost.
func (m *Semaphore) Acquire(ctx context.Context) (*Guard, error) { return m.acquire(ctx, false) }

// TryAcquire takes a permit if one is free, or returns ErrLocked.
func (m *Semaphore) TryAcquire(ctx context.Context) (*Guard, error) { return m.acquire(ctx, true) }

func (m *Semaphore) acquire(ctx context.Context, try bool) (*Guard, error) {
	return acquireWith(ctx, m.s, m.name, func(ctx context.Context) (driver.Held, error) {
		return m.l.Acquire(ctx, m.s.Driver(), m.name, m.limit, driver.LockOptions{Try: try})
	})
}

// driverFor validates name and finds the backend capability T.
func driverFor[T any](s *coord.Session, name, what string) (T, error) {
	var zero T
	if s == nil {
		return zero, errors.New("lock: nil session")
	}
	if err := coord.ValidateName(name); err != nil {
		return zero, fmt.Errorf("lock: %w", err)
	}
	l, ok := s.Client().Driver().(T)
	if !ok {
		return zero, fmt.Errorf("lock: %s on the %s backend: %w", what, s.Client().Backend(), coord.ErrUnsupported)
	}
	return l, nil
}

// acquireWith checks the session and ctx, then runs the backend call.
func acquireWith(ctx context.Context, s *coord.Session, name string, call func(context.Context) (driver.Held, error)) (*Guard, error) {
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	h, err := call(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	return &Guard{h: h, name: name}, nil
}
