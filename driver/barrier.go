package driver

import "context"

// Barrierer is implemented by a Client that provides barriers.
type Barrierer interface {
	// HoldBarrier raises barrier name, owned by session s: it stays up until
	// ReleaseBarrier or until s ends (closed or lost). It fails with an error
	// wrapping coord.ErrExists when the barrier is already up.
	HoldBarrier(ctx context.Context, s Session, name string) error
	// ReleaseBarrier lowers barrier name, whoever raised it; lowering a
	// barrier that is down is not an error.
	ReleaseBarrier(ctx context.Context, name string) error
	// WaitBarrier blocks until barrier name is down (at once if it was never
	// raised), or ctx is done.
	WaitBarrier(ctx context.Context, name string) error

	// EnterDoubleBarrier registers participant id (unique per participant)
	// of double barrier name, owned by session s, and blocks until n
	// participants have entered. A participant whose session ends stops
	// counting. On error (ctx done, session lost) it removes its entry.
	EnterDoubleBarrier(ctx context.Context, s Session, name string, n int, id string) error
	// LeaveDoubleBarrier removes participant id and blocks until every
	// participant has left (or its session ended), or ctx is done.
	LeaveDoubleBarrier(ctx context.Context, s Session, name string, id string) error
}
