// Package election provides leader election on every coord backend.
//
//	e, _ := election.New(session, "scheduler")
//	term, err := e.Campaign(ctx, []byte("host-a:8080")) // blocks until leader
//	defer term.Resign(ctx)
//	<-term.Done() // lost: term.Err() wraps ErrLeadershipLost
//
// Guarantees: while sessions are live, at most one leader per name; each new
// term has a greater Token (use it to fence writes); a leader whose process
// dies is replaced within about one session TTL (Consul: up to twice its
// TTL); a leader that resigns is replaced within a few round trips, by the
// candidate that has waited longest. Observers see the current leader and
// then every change, never going back to an older term.
//
// Limits: leadership is a lease. A leader paused longer than its TTL loses
// leadership while it still runs; only the token, checked by whatever the
// leader writes to, makes that safe. On Redis the election lives on one
// primary and an asynchronous failover can elect a second leader.
package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Errors re-exported from coord for callers of this package.
var (
	ErrNoLeader       = coord.ErrNoLeader
	ErrNotLeader      = coord.ErrNotLeader
	ErrLeadershipLost = coord.ErrLeadershipLost
	ErrSessionExpired = coord.ErrSessionExpired
	ErrSessionClosed  = coord.ErrSessionClosed
)

// Election is a named election in which one session campaigns.
type Election struct {
	s    *coord.Session
	name string
	e    driver.Elector
}

// New returns the election name for session s.
func New(s *coord.Session, name string) (*Election, error) {
	if s == nil {
		return nil, errors.New("election: nil session")
	}
	e, err := elector(s.Client(), name)
	if err != nil {
		return nil, err
	}
	return &Election{s: s, name: name, e: e}, nil
}

func elector(c *coord.Client, name string) (driver.Elector, error) {
	if err := coord.ValidateName(name); err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	e, ok := c.Driver().(driver.Elector)
	if !ok {
		return nil, fmt.Errorf("election on the %s backend: %w", c.Backend(), coord.ErrUnsupported)
	}
	return e, nil
}

// Name returns the election's name.
func (e *Election) Name() string { return e.name }

// Campaign blocks until this session is leader and returns the term, or
// until ctx is done or the session is lost (after removing its candidacy).
func (e *Election) Campaign(ctx context.Context, value []byte) (*Term, error) {
	if err := e.s.Err(); err != nil {
		return nil, fmt.Errorf("election %q: %w", e.name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("election %q: %w", e.name, err)
	}
	t, err := e.e.Campaign(ctx, e.s.Driver(), e.name, value)
	if err != nil {
		return nil, fmt.Errorf("election %q: %w", e.name, err)
	}
	return &Term{t: t, name: e.name}, nil
}

// Leader returns the current leader, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	return leader(ctx, e.e, e.name)
}

// Observe starts an Observer of this election (see Observe).
func (e *Election) Observe(ctx context.Context) *Observer {
	return observe(ctx, e.e, e.name)
}

// Leader describes a leadership term.
type Leader struct {
	// Name is the election's name.
	Name string
	// Token is the term's fencing token; zero when there is no leader.
	Token coord.Token
	// Value is the leader's latest proclaimed value.
	Value []byte
}

// Elected reports whether there is a leader.
func (l Leader) Elected() bool { return l.Token != 0 }

// LeaderOf returns the current leader of election name on client c, or
// ErrNoLeader. It needs no session.
func LeaderOf(ctx context.Context, c *coord.Client, name string) (Leader, error) {
	e, err := elector(c, name)
	if err != nil {
		return Leader{}, err
	}
	return leader(ctx, e, name)
}

func leader(ctx context.Context, e driver.Elector, name string) (Leader, error) {
	li, err := e.Leader(ctx, name)
	if err != nil {
		return Leader{}, fmt.Errorf("election %q: %w", name, err)
	}
	return Leader{Name: name, Token: coord.Token(li.Token), Value: li.Value}, nil
}

// Term is a leadership won by Campaign.
type Term struct {
	t    driver.Term
	name string
}

// Token is the term's fencing token, greater than every earlier term's.
func (t *Term) Token() coord.Token { return coord.Token(t.t.Token()) }

// Name returns the election's name.
func (t *Term) Name() string { return t.name }

// Value returns the latest value this term proclaimed.
func (t *Term) Value() []byte { return t.t.Value() }

// Done is closed when the term ends, by Resign or by loss.
func (t *Term) Done() <-chan struct{} { return t.t.Done() }

// Err is nil while leader, ErrNotLeader after Resign, and an error wrapping
// ErrLeadershipLost and its cause (e.g. ErrSessionExpired) after a loss.
func (t *Term) Err() error {
	err := t.t.Err()
	if errors.Is(err, coord.ErrNotHeld) && !errors.Is(err, coord.ErrNotLeader) {
		return fmt.Errorf("%w: %w", coord.ErrNotLeader, err)
	}
	return err
}

// Proclaim changes the leader's value without a new election; observers see
// it. It fails with ErrNotLeader once the term has ended.
func (t *Term) Proclaim(ctx context.Context, value []byte) error {
	if err := t.t.Proclaim(ctx, value); err != nil {
		return fmt.Errorf("election %q: proclaim: %w", t.name, err)
	}
	return nil
}

// Resign gives leadership up; the next candidate takes over within a few
// round trips. The term counts as ended only once the server confirmed it: a
// Resign that fails leaves the term held (retry, or close the session).
func (t *Term) Resign(ctx context.Context) error {
	if err := t.t.Release(ctx); err != nil {
		if errors.Is(err, coord.ErrNotHeld) && !errors.Is(err, coord.ErrNotLeader) {
			err = fmt.Errorf("%w: %w", coord.ErrNotLeader, err)
		}
		return fmt.Errorf("election %q: resign: %w", t.name, err)
	}
	return nil
}

// Run campaigns for leadership, runs fn while leader with a context that is
// cancelled when leadership is lost, and resigns when fn returns. fn's error
// is returned; if leadership was lost while fn ran, the error also wraps
// ErrLeadershipLost.
func Run(ctx context.Context, e *Election, value []byte, fn func(ctx context.Context, t *Term) error) (err error) {
	t, err := e.Campaign(ctx, value)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	watcherDone := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-t.Done():
			cancel(t.Err())
		case <-quit:
		}
	}()
	defer func() {
		close(quit)
		<-watcherDone
		cancel(nil)
		lost := t.t.Err()
		rerr := t.Resign(context.WithoutCancel(ctx))
		switch {
		case lost != nil && !errors.Is(lost, coord.ErrNotHeld):
			err = errors.Join(err, lost)
		case rerr != nil:
			err = errors.Join(err, rerr)
		}
	}()
	return fn(fctx, t)
}
