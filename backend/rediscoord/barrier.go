package rediscoord

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

var _ driver.Barrierer = (*client)(nil)

func (c *client) barrierBase(name string) string  { return c.ns + ":barrier:{" + name + "}" }
func (c *client) dbarrierBase(name string) string { return c.ns + ":dbarrier:{" + name + "}" }

// ownSession checks that ds is a live session of this client.
func (c *client) ownSession(ds driver.Session) (*session, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("redis: the session does not belong to this client")
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// HoldBarrier sets the key NS:barrier:{NAME} to the session's entry, with the
// session's TTL renewed by its heartbeat, unless it is already set by a live
// session (coord.ErrExists). The barrier goes down on ReleaseBarrier, when
// the session closes (at once, waiters told), or when the session is lost
// (at once when its keys are removed; within one TTL when its process died).
func (c *client) HoldBarrier(ctx context.Context, ds driver.Session, name string) error {
	s, err := c.ownSession(ds)
	if err != nil {
		return err
	}
	base, wid := c.barrierBase(name), randomID(8)
	n, err := scriptBHold.Run(ctx, c.rdb, []string{base, s.key, s.owned},
		s.id+":"+wid, wid, s.ttl.Milliseconds(), c.sessionPrefix()).Int64()
	if err != nil {
		return c.errUnavailable(fmt.Errorf("hold %s: %w", base, err))
	}
	switch n {
	case 1:
		return nil
	case -1:
		s.lose(fmt.Errorf("redis session %s: %w: the server no longer has it", s.id, coord.ErrSessionExpired))
		return s.Err()
	}
	return fmt.Errorf("redis %s: %w", base, coord.ErrExists)
}

// ReleaseBarrier deletes the barrier key, whoever set it, and publishes on
// the barrier's channel so that every WaitBarrier returns. A barrier that is
// down is not an error.
func (c *client) ReleaseBarrier(ctx context.Context, name string) error {
	base := c.barrierBase(name)
	if err := scriptBRelease.Run(ctx, c.rdb, []string{base}, c.sessionPrefix()).Err(); err != nil {
		return c.errUnavailable(fmt.Errorf("release %s: %w", base, err))
	}
	return nil
}

// WaitBarrier subscribes to the barrier's channel, then checks the barrier
// key, and checks again on every message, reconnect, or when the key's TTL
// runs out (its holder may have died); it returns nil once the barrier is
// down, or a wrapped ctx.Err().
func (c *client) WaitBarrier(ctx context.Context, name string) error {
	base := c.barrierBase(name)
	return c.follow(ctx, base+":ch", func(ctx context.Context) (bool, time.Duration, error) {
		pt, err := scriptBState.Run(ctx, c.rdb, []string{base}, c.sessionPrefix()).Int64()
		if err != nil {
			return false, 0, c.errUnavailable(fmt.Errorf("state of %s: %w", base, err))
		}
		if pt == -2 {
			return true, 0, nil
		}
		return false, time.Duration(max(pt, 0))*time.Millisecond + 20*time.Millisecond, nil
	})
}

// EnterDoubleBarrier registers participant id (field hex(id) = SID of the
// hash NS:dbarrier:{NAME}:p; its liveness is its session's) and blocks until
// n live participants are in. The caller that sees n raises the ready marker
// and publishes on the barrier's channel; the others, subscribed before they
// registered, check again on that message. A participant arriving while the
// marker is up returns at once. On error (ctx done, session lost, Redis
// unreachable) the entry is removed before it returns. An id registered by
// another live session fails with coord.ErrExists.
func (c *client) EnterDoubleBarrier(ctx context.Context, ds driver.Session, name string, n int, id string) error {
	s, err := c.ownSession(ds)
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("redis double barrier %s: count %d, want at least 1", name, n)
	}
	if id == "" {
		return fmt.Errorf("redis double barrier %s: empty participant id", name)
	}
	base, hid := c.dbarrierBase(name), hex.EncodeToString([]byte(id))
	sctx, cancel := withSession(ctx, s)
	defer cancel()
	err = c.follow(sctx, base+":ch", func(ctx context.Context) (bool, time.Duration, error) {
		r, err := scriptDEnter.Run(ctx, c.rdb, []string{base, s.key, s.owned}, s.id, hid, n, c.sessionPrefix()).Int64()
		if err != nil {
			return false, 0, c.errUnavailable(fmt.Errorf("enter %s: %w", base, err))
		}
		switch r {
		case 1:
			return true, 0, nil
		case -1:
			s.lose(fmt.Errorf("redis session %s: %w: the server no longer has it", s.id, coord.ErrSessionExpired))
			return false, 0, s.Err()
		case -2:
			return false, 0, fmt.Errorf("redis %s: participant %q: %w", base, id, coord.ErrExists)
		}
		return false, s.ttl, nil
	})
	if err == nil {
		return nil
	}
	if serr := s.Err(); serr != nil && !errors.Is(err, coord.ErrExists) {
		err = serr
	}
	if !errors.Is(err, coord.ErrExists) {
		c.leaveNow(ctx, s, base, hid)
	}
	return err
}

// leaveNow removes participant hid (the clean-up of a failed Enter), detached
// from ctx's cancellation; if Redis cannot be reached, the session's next
// renewal does it, or the entry dies with the session.
func (c *client) leaveNow(ctx context.Context, s *session, base, hid string) {
	timeout := cleanupTimeout
	if s.Err() != nil {
		timeout = min(timeout, s.ttl/2)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := scriptDLeave.Run(cctx, c.rdb, []string{base, s.owned}, s.id, hid, c.sessionPrefix()).Err(); err != nil {
		s.abandonOwned("d"+hid, "d "+hid+" "+base)
	}
}

// LeaveDoubleBarrier removes participant id and blocks until no live
// participant is left. The script that finds none left lowers the ready
// marker (so the name can be used again) and publishes on the barrier's
// channel; the others, subscribed before they removed themselves, check
// again on that message, or when the session of a participant still in could
// have expired (a lost participant stops counting). It returns a wrapped
// ctx.Err() when ctx is done first (its own entry is gone anyway).
func (c *client) LeaveDoubleBarrier(ctx context.Context, ds driver.Session, name string, id string) error {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return fmt.Errorf("redis: the session does not belong to this client")
	}
	base, hid := c.dbarrierBase(name), hex.EncodeToString([]byte(id))
	return c.follow(ctx, base+":ch", func(ctx context.Context) (bool, time.Duration, error) {
		res, err := scriptDLeave.Run(ctx, c.rdb, []string{base, s.owned}, s.id, hid, c.sessionPrefix()).Int64Slice()
		if err != nil {
			return false, 0, c.errUnavailable(fmt.Errorf("leave %s: %w", base, err))
		}
		if len(res) != 2 {
			return false, 0, fmt.Errorf("redis %s: leave %s: %d fields in the reply: %w", c.addr, base, len(res), coord.ErrCorrupt)
		}
		if res[0] == 0 {
			return true, 0, nil
		}
		wait := s.ttl
		if res[1] > 0 {
			wait = time.Duration(res[1])*time.Millisecond + 20*time.Millisecond
		}
		return false, wait, nil
	})
}

// withSession returns a context that is also cancelled when s ends.
func withSession(ctx context.Context, s *session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
