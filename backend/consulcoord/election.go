package consulcoord

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Campaign enters s as a candidate of election name: each call acquires its
// own key "<root>/election/<name>/<session>-<nonce>" with the session, holding
// value, in the same /v1/txn request that lists the candidates. Candidates
// are ordered by CreateIndex and the first one leads; a candidate watches only
// its predecessor's key (a blocking query) and lists again when it is gone:
// FIFO, herd-free, no polling. Leadership is claimed only when the first
// candidacy is this call's own key (same key, session and CreateIndex).
//
// The term's token is the candidacy's CreateIndex, a Raft index, so every new
// term of name has a greater token. The session's lock-delay is emulated as
// for Lock: a successor whose predecessor's session was invalidated waits
// that lock-delay before it reports the leadership won.
//
// The term ends with coord.LostLeadership(s.Err()) when the session ends. A
// candidacy deleted by hand while the session lives is noticed only by
// Proclaim and Release.
func (c *client) Campaign(ctx context.Context, ds driver.Session, name string, value []byte) (driver.Term, error) {
	prefix := c.recipePrefix("election", name)
	value = bytes.Clone(value)
	return contend(ctx, c, ds, "campaign "+name, prefix, "", func(ctx context.Context, s *session, key string) (driver.Term, error) {
		own, pairs, err := c.enqueue(ctx, s, prefix, key, value)
		if err != nil {
			return nil, err
		}
		var gone *contender
		for {
			cs, err := parseEntries(prefix, pairs)
			if err != nil {
				return nil, err
			}
			pos := position(cs, key, own.create)
			if pos < 0 {
				return nil, c.ownKeyGone(ctx, s, key)
			}
			if pos == 0 {
				if cs[0].session != s.id {
					return nil, fmt.Errorf("consul: candidacy %s is held by session %s: %w", key, cs[0].session, coord.ErrCorrupt)
				}
				if gone != nil {
					if err := c.lockDelayWait(ctx, *gone); err != nil {
						return nil, err
					}
				}
				return c.newTerm(s, cs[0], value), nil
			}
			pred := cs[pos-1]
			if err := c.waitGone(ctx, pred); err != nil {
				return nil, err
			}
			gone = &pred
			if pairs, err = c.list(ctx, prefix); err != nil {
				return nil, err
			}
		}
	})
}

// Leader reads the candidates of name and returns the first one's token and
// value, or an error wrapping coord.ErrNoLeader when there is none. It reads
// with Consul's default consistency (the Raft leader's view, not
// quorum-checked). The first candidate is reported even in the short window
// in which its Campaign has not returned yet.
func (c *client) Leader(ctx context.Context, name string) (driver.LeaderInfo, error) {
	prefix := c.recipePrefix("election", name)
	pairs, _, err := c.cli.KV().List(prefix, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return driver.LeaderInfo{}, c.failed("list "+prefix, err)
	}
	cs, err := parseEntries(prefix, pairs)
	if err != nil {
		return driver.LeaderInfo{}, err
	}
	if len(cs) == 0 {
		return driver.LeaderInfo{}, fmt.Errorf("consul: election %s: %w", name, coord.ErrNoLeader)
	}
	return driver.LeaderInfo{Token: cs[0].create, Value: cs[0].value}, nil
}

// Observe calls fn with the current leader of name and then after every
// change, following the candidates with blocking queries on the election's
// prefix (the wait index is reset when the server's index goes backwards,
// after a snapshot restore). Each answer is compared with the last delivered
// leader, so unrelated changes (a candidate queueing) deliver nothing. A
// failed query is retried with backoff and the next answer is a full read, so
// the latest state is always delivered once the agent answers again; a
// refusal (403, ...) or a foreign entry ends Observe with that error.
func (c *client) Observe(ctx context.Context, name string, fn func(driver.LeaderInfo)) error {
	prefix := c.recipePrefix("election", name)
	var (
		index uint64
		last  driver.LeaderInfo
		first = true
	)
	for {
		pairs, next, err := c.watchPrefix(ctx, prefix, index)
		if ctx.Err() != nil {
			return fmt.Errorf("consul: observe %s: %w", name, ctx.Err())
		}
		if err != nil {
			return err
		}
		cs, err := parseEntries(prefix, pairs)
		if err != nil {
			return err
		}
		var li driver.LeaderInfo
		if len(cs) > 0 {
			li = driver.LeaderInfo{Token: cs[0].create, Value: cs[0].value}
		}
		if first || li.Token != last.Token || !bytes.Equal(li.Value, last.Value) {
			first = false
			last = li
			fn(li)
		}
		index = next
	}
}

// term is a leadership won by Campaign: a held candidacy with a value.
type term struct {
	*held
	vmu   sync.Mutex
	value []byte
}

var _ driver.Term = (*term)(nil)

func (c *client) newTerm(s *session, ct contender, value []byte) *term {
	return &term{held: c.newHeldLost(s, ct, coord.LostLeadership), value: value}
}

// Value returns the latest value this term proclaimed.
func (t *term) Value() []byte {
	t.vmu.Lock()
	defer t.vmu.Unlock()
	return bytes.Clone(t.value)
}

// Proclaim replaces the candidacy's value with a compare-and-set on its
// ModifyIndex that also keeps it acquired by the session, so it never writes
// a candidacy that is no longer this term's. When the candidacy is gone or
// changed, the term ends as lost and Proclaim fails with an error wrapping
// coord.ErrNotLeader; a transport failure leaves the term as it was.
func (t *term) Proclaim(ctx context.Context, value []byte) error {
	value = bytes.Clone(value)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.Err(); err != nil {
		return fmt.Errorf("consul: proclaim %s: %w (%w)", t.key, coord.ErrNotLeader, err)
	}
	own := contender{key: t.key, create: t.token, modify: t.modify}
	modify, ok, err := t.c.rewrite(ctx, t.s, own, value)
	if err != nil {
		return err
	}
	if !ok {
		t.End(coord.LostLeadership(t.c.lossCause(ctx, t.s, t.key)))
		return fmt.Errorf("consul: proclaim %s: %w (%w)", t.key, coord.ErrNotLeader, t.Err())
	}
	t.modify = modify
	t.vmu.Lock()
	t.value = value
	t.vmu.Unlock()
	return nil
}
