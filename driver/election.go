package driver

import "context"

// Elector is implemented by a Client that provides leader election.
type Elector interface {
	// Campaign enters session s as a candidate for name, publishing value,
	// and blocks until s's candidacy is the leader, ctx is done (a wrapped
	// ctx.Err()) or s is lost (a wrapped s.Err()). Leadership is claimed only
	// after checking that the leading candidacy is this call's own (its key
	// belongs to s). On every error it removes its candidacy. Candidates are
	// served in FIFO order and each waits only for its predecessor where the
	// backend allows. Several Campaign calls of one session on one name are
	// separate candidates.
	Campaign(ctx context.Context, s Session, name string, value []byte) (Term, error)
	// Leader returns the current leader of name, or an error wrapping
	// coord.ErrNoLeader when there is none.
	Leader(ctx context.Context, name string) (LeaderInfo, error)
	// Observe calls fn with the current leader of name (LeaderInfo{} when
	// there is none) and then after every change (new leader, Proclaim,
	// leader gone), in order, from one goroutine, until ctx is done (it then
	// returns a wrapped ctx.Err()) or it fails for good. Transient failures
	// (a dropped watch, a reconnect) are retried inside, re-reading the state
	// so that no change is missed at the end: after a reconnect the latest
	// state is delivered. Intermediate states may be skipped. fn must not
	// block for long.
	Observe(ctx context.Context, name string, fn func(LeaderInfo)) error
}

// LeaderInfo describes a leadership term as observers see it.
type LeaderInfo struct {
	// Token is the term's fencing token (the leader's candidacy token): each
	// new term of a name has a greater token. Zero means there is no leader.
	Token uint64
	// Value is the leader's latest proclaimed value.
	Value []byte
}

// Term is a leadership held by Campaign. Release resigns: it gives the
// leadership up on the server and reports success only after the server
// confirmed it; a Release that fails leaves the term held.
type Term interface {
	Held
	// Value returns the latest value this term proclaimed.
	Value() []byte
	// Proclaim replaces the leader's value without an election. It fails
	// with an error wrapping coord.ErrNotLeader when the term has ended.
	Proclaim(ctx context.Context, value []byte) error
}
