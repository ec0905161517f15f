package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// EnterDoubleBarrier registers participant id of double barrier name (the
// recipe of Curator's DistributedDoubleBarrier) and waits until n have
// entered:
//
//  1. an exists watch is armed on the #ready marker (before anything else,
//     so its creation cannot be missed); if it is up, the participant joins
//     the round that is already under way and returns at once after step 2;
//  2. the ephemeral node #p-<id> is created, owned by the session;
//  3. the participants are counted; the one that sees n or more creates the
//     #ready marker (ephemeral, owned by its session) and returns; the others
//     wait for the marker's creation.
//
// A participant whose session ends stops counting (its node is ephemeral).
// On ctx done or session loss the participant node is deleted before
// EnterDoubleBarrier returns. It fails with coord.ErrExists when id is
// already entered.
func (c *client) EnterDoubleBarrier(ctx context.Context, ds driver.Session, name string, n int, id string) error {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return fmt.Errorf("zkcoord: double barrier %q: session does not belong to this client", name)
	}
	if err := validID(id); err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: %w", name, err)
	}
	if err := s.Err(); err != nil {
		return err
	}
	dir := c.recipePath("barrier", name)
	ready := dir + "/" + barrierReady
	readyCh, up, err := s.watchExists(ctx, ready)
	if err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: enter: %w", name, err)
	}
	me := dir + "/" + participant + id
	if err := s.createOwn(ctx, me); err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: enter: %w", name, err)
	}
	if up {
		return nil
	}
	if err := s.awaitParticipants(ctx, dir, ready, readyCh, n); err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: enter: %w", name, s.dequeue(ctx, me, err))
	}
	return nil
}

// awaitParticipants waits until n participants are in dir or the ready
// marker was created (readyCh fires).
func (s *session) awaitParticipants(ctx context.Context, dir, ready string, readyCh <-chan zk.Event, n int) error {
	for {
		children, err := s.children(ctx, dir)
		if err != nil {
			return err
		}
		if count, _ := participants(children); count >= n {
			err := s.createOwn(ctx, ready)
			if err == nil || errors.Is(err, coord.ErrExists) {
				return nil
			}
			return err
		}
		select {
		case ev := <-readyCh:
			if ev.Type == zk.EventNodeCreated {
				return nil // the round started (even if the marker is gone again)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d participants in %s: %w", n, dir, ctx.Err())
		case <-s.Done():
			return s.Err()
		}
		// The watch was dropped (or the marker changed): arm it again and look.
		ch, up, err := s.watchExists(ctx, ready)
		if err != nil {
			return err
		}
		if up {
			return nil
		}
		readyCh = ch
	}
}

// LeaveDoubleBarrier deletes participant id's node and waits until no
// participant node is left in the double barrier, watching the first
// remaining one (a participant whose session ends disappears and stops
// counting). Whoever sees the barrier empty deletes the #ready marker, so
// the name can be used for another round.
//
// Limit (as in Curator): a participant still leaving when the next round's
// first participant enters the same name waits for that round to end too;
// give each round its own name when rounds follow each other closely.
func (c *client) LeaveDoubleBarrier(ctx context.Context, ds driver.Session, name string, id string) error {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return fmt.Errorf("zkcoord: double barrier %q: session does not belong to this client", name)
	}
	if err := validID(id); err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: %w", name, err)
	}
	dir := c.recipePath("barrier", name)
	if err := s.deleteOwn(ctx, dir+"/"+participant+id); err != nil {
		return fmt.Errorf("zkcoord: double barrier %q: leave: %w", name, err)
	}
	for {
		children, err := s.children(ctx, dir)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("zkcoord: double barrier %q: leave: %w", name, err)
		}
		count, first := participants(children)
		if count == 0 {
			if err := s.deleteOwn(ctx, dir+"/"+barrierReady); err != nil {
				return fmt.Errorf("zkcoord: double barrier %q: leave: %w", name, err)
			}
			return nil
		}
		p := dir + "/" + first
		ch, _, err := s.watchNode(ctx, p)
		if err != nil {
			return fmt.Errorf("zkcoord: double barrier %q: leave: %w", name, err)
		}
		if ch == nil {
			continue
		}
		if err := s.waitEvent(ctx, p, ch); err != nil {
			return fmt.Errorf("zkcoord: double barrier %q: leave: %w", name, err)
		}
	}
}

// deleteOwn deletes p (absent is fine), retrying while the connection is
// down, within ctx and the session.
func (s *session) deleteOwn(ctx context.Context, p string) error {
	for {
		_, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, s.conn.Delete(p, -1) }, nil)
		switch {
		case err == nil || errors.Is(err, zk.ErrNoNode):
			s.dropNode(p)
			return nil
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return err
			}
		default:
			return fmt.Errorf("delete %s: %w", p, err)
		}
	}
}

// watchExists arms an exists watch on p and reports whether p is there.
func (s *session) watchExists(ctx context.Context, p string) (<-chan zk.Event, bool, error) {
	type res struct {
		ok bool
		ch <-chan zk.Event
	}
	for {
		r, err := call(ctx, s, func() (res, error) {
			ok, _, ch, err := s.conn.ExistsW(p)
			return res{ok, ch}, err
		}, nil)
		switch {
		case err == nil:
			return r.ch, r.ok, nil
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, err
		}
	}
}

// validID checks a double-barrier participant ID: a coord name without '/'.
func validID(id string) error {
	if err := coord.ValidateName(id); err != nil || strings.Contains(id, "/") {
		return fmt.Errorf("participant id %q: %w", id, coord.ErrInvalidName)
	}
	return nil
}
