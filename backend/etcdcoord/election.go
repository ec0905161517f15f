package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

var _ driver.Elector = (*client)(nil)

// errCandidacyGone reports that a leader's candidacy key was deleted while its
// session lived (by hand: that is an operator deposing the leader).
var errCandidacyGone = errors.New("etcd: the candidacy key was deleted by someone else")

// electionPrefix is the prefix of the candidacy keys of election name; the
// "~" segment keeps election "a" apart from election "a/b".
func (c *client) electionPrefix(name string) string {
	return c.root + "election/" + name + "/~/"
}

// Campaign enters session ds as a candidate for name with etcd's native
// queue: the candidacy is a key <root>election/<name>/~/<lease>-<nonce>
// bound to the session's lease and holding value. Candidates are ordered by
// create revision, and the oldest candidacy is the leader. Each candidate
// waits only for its predecessor (the candidacy created just before its own),
// with a watch confirmed by the server before the predecessor is read again,
// so a resignation wakes exactly the next candidate, in FIFO order.
//
// Leadership is claimed only after a transaction that both checks that this
// call's own key still exists with its create revision and finds no older
// candidacy: the leader is always this call's own key, never an older key of
// the same session or a key that was replaced.
//
// The term's token is the candidacy's create revision, so each new term has
// a greater token. Campaign gives up with a wrapped ctx.Err() when ctx is
// done and with the session's error when the session ends, and deletes its
// candidacy on every error.
func (c *client) Campaign(ctx context.Context, ds driver.Session, name string, value []byte) (driver.Term, error) {
	s, err := c.session(ds)
	if err != nil {
		return nil, err
	}
	pfx := c.electionPrefix(name)
	w := queueWait{op: "campaign", pfx: pfx, key: contenderKey(pfx, s), value: string(value), ahead: pfx, n: 1}
	rev, err := c.contend(ctx, s, w)
	if err != nil {
		return nil, err
	}
	return &term{h: c.newHeld(s, w.pfx, w.key, rev), value: append([]byte(nil), value...)}, nil
}

// Leader returns the oldest candidacy of name: its create revision as the
// token and its value. It fails with an error wrapping coord.ErrNoLeader when
// there is no candidate. The oldest candidate may still be completing its
// Campaign call (a round trip), but nobody else can become leader before it.
func (c *client) Leader(ctx context.Context, name string) (driver.LeaderInfo, error) {
	resp, err := c.cli.Get(ctx, c.electionPrefix(name), clientv3.WithFirstCreate()...)
	if err != nil {
		return driver.LeaderInfo{}, c.rpcErr(ctx, "election leader", err)
	}
	if len(resp.Kvs) == 0 {
		return driver.LeaderInfo{}, fmt.Errorf("etcd election %q: %w", name, coord.ErrNoLeader)
	}
	kv := resp.Kvs[0]
	return driver.LeaderInfo{Token: uint64(kv.CreateRevision), Value: kv.Value}, nil
}

// term is a leadership won by Campaign: the held candidacy key. It ends with
// coord.ErrNotHeld on Release, and with coord.LostLeadership of the session's
// error when the session ends (the lease takes the key with it, and the next
// candidate takes over). Like a held lock it opens no watch of its own: a
// candidacy deleted by hand while the session lives is noticed by the next
// Proclaim or Resign, which then end the term.
type term struct {
	h *held

	mu    sync.Mutex // serialises Proclaim; guards value
	value []byte
}

var _ driver.Term = (*term)(nil)

// Token is the candidacy's create revision.
func (t *term) Token() uint64 { return t.h.Token() }

// Done is closed when the term ends, by Release or by the session's end.
func (t *term) Done() <-chan struct{} { return t.h.Done() }

// Err is nil while leader, coord.ErrNotHeld after Release, and an error
// wrapping coord.ErrLeadershipLost and the cause (coord.ErrSessionExpired,
// coord.ErrSessionClosed) after a loss.
func (t *term) Err() error { return leadershipErr(t.h.Err()) }

// leadershipErr turns the held key's end into the term's: a loss
// (coord.Lost(cause)) becomes coord.LostLeadership(cause).
func leadershipErr(err error) error {
	if err == nil || !errors.Is(err, coord.ErrLockLost) {
		return err
	}
	var cause error
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			if e != coord.ErrLockLost {
				cause = e
			}
		}
	}
	if cause == nil || errors.Is(cause, errKeyGone) {
		cause = errCandidacyGone
	}
	return coord.LostLeadership(cause)
}

// Value returns the latest value the term proclaimed.
func (t *term) Value() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.value...)
}

// Proclaim replaces the candidacy's value if the key is still this term's
// (same create revision), keeping it bound to the lease. It fails with an
// error wrapping coord.ErrNotLeader when the term has ended or the key is
// gone. After an error other than ErrNotLeader (server unreachable) the
// value may or may not have changed.
func (t *term) Proclaim(ctx context.Context, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.Err(); err != nil {
		return fmt.Errorf("etcd proclaim: %w: %w", coord.ErrNotLeader, err)
	}
	if err := t.h.s.Err(); err != nil {
		return fmt.Errorf("etcd proclaim: %w: %w", coord.ErrNotLeader, err)
	}
	h := t.h
	resp, err := h.c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
		Then(clientv3.OpPut(h.key, string(value), clientv3.WithIgnoreLease())).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd proclaim: %w", h.c.rpcErr(ctx, "put candidacy value", err))
	}
	if !resp.Succeeded {
		// The candidacy is gone: with the lease (the session ends as
		// expired), or deleted by hand. Either way the term is over.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		gone := h.s.leaseGone(lctx)
		cancel()
		if gone {
			h.End(coord.Lost(h.s.Err()))
		} else {
			h.End(coord.Lost(errKeyGone))
		}
		return fmt.Errorf("etcd proclaim: %w: %w", coord.ErrNotLeader, t.Err())
	}
	t.value = append([]byte(nil), value...)
	return nil
}

// Release resigns: it deletes the candidacy key if it is still this term's,
// which hands leadership to the next candidate, and ends the term with
// coord.ErrNotHeld once the server confirmed the delete. A Release that
// fails (server unreachable) leaves the term held; one on an ended term
// returns an error wrapping coord.ErrNotHeld.
func (t *term) Release(ctx context.Context) error {
	err := t.h.Release(ctx)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, coord.ErrNotHeld):
		return fmt.Errorf("etcd resign: %w", err) // still held
	case errors.Is(t.Err(), coord.ErrNotHeld):
		return fmt.Errorf("etcd resign: %w", t.Err())
	}
	return fmt.Errorf("etcd resign: %w: %w", coord.ErrNotHeld, t.Err())
}
