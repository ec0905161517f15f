package driver

import "context"

// RWLocker is implemented by a Client that provides read-write locks: any
// number of readers share the lock, a writer excludes everyone. Waiters are
// served in arrival order where the backend orders them, so a waiting
// writer is not starved by a stream of later readers.
type RWLocker interface {
	// RWLock acquires name for session s, as a writer when write is true and
	// as a reader otherwise, with the semantics of Locker.Lock (Try, cleanup
	// on every error, abort on ctx or session end). The Held's token is
	// strictly greater than the token of every earlier holder that it
	// excludes (every earlier writer and, for a writer, every earlier reader).
	RWLock(ctx context.Context, s Session, name string, write bool, opts LockOptions) (Held, error)
}

// Semaphorer is implemented by a Client that provides counting semaphores.
type Semaphorer interface {
	// Acquire takes one of limit permits of name for session s, with the
	// semantics of Locker.Lock (Try → coord.ErrLocked when all permits are
	// taken, cleanup on every error, abort on ctx or session end). At most
	// limit holders exist at any time while sessions are live; a holder whose
	// session is lost frees its permit at once for the waiters. All callers of
	// one name must pass the same limit. Tokens strictly increase across
	// successive acquisitions of name.
	Acquire(ctx context.Context, s Session, name string, limit int, opts LockOptions) (Held, error)
}
