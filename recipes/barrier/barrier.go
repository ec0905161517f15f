// Package barrier provides distributed barriers on every coord backend.
//
// A Barrier blocks every Wait until it is released:
//
//	b, _ := barrier.New(session, "deploy")
//	_ = b.Hold(ctx)      // raise it (owned by the session)
//	_ = b.Wait(ctx)      // elsewhere: blocks until someone calls Release
//	_ = b.Release(ctx)
//
// A DoubleBarrier lets n participants start and finish together: Enter
// returns once n have entered, Leave once all have left.
//
// A raised barrier and a double-barrier participant belong to a session: if
// the session is lost the barrier goes down and the participant stops
// counting, so a dead process never blocks the others forever.
package barrier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// ErrExists is returned by Hold when the barrier is already up.
var ErrExists = coord.ErrExists

// Barrier is a named barrier.
type Barrier struct {
	s    *coord.Session
	name string
	b    driver.Barrierer
}

func barrierer(s *coord.Session, name string) (driver.Barrierer, error) {
	if s == nil {
		return nil, errors.New("barrier: nil session")
	}
	if err := coord.ValidateName(name); err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	b, ok := s.Client().Driver().(driver.Barrierer)
	if !ok {
		return nil, fmt.Errorf("barrier on the %s backend: %w", s.Client().Backend(), coord.ErrUnsupported)
	}
	return b, nil
}

// New returns barrier name for session s (Hold ties the raised barrier to s).
func New(s *coord.Session, name string) (*Barrier, error) {
	b, err := barrierer(s, name)
	if err != nil {
		return nil, err
	}
	return &Barrier{s: s, name: name, b: b}, nil
}

// Name returns the barrier's name.
func (b *Barrier) Name() string { return b.name }

// Hold raises the barrier; it fails with ErrExists when it is already up.
// The barrier goes down by Release or when the session ends.
func (b *Barrier) Hold(ctx context.Context) error {
	if err := b.s.Err(); err != nil {
		return fmt.Errorf("barrier %q: %w", b.name, err)
	}
	if err := b.b.HoldBarrier(ctx, b.s.Driver(), b.name); err != nil {
		return fmt.Errorf("barrier %q: hold: %w", b.name, err)
	}
	return nil
}

// Release lowers the barrier, whoever raised it, and wakes every Wait.
func (b *Barrier) Release(ctx context.Context) error {
	if err := b.b.ReleaseBarrier(ctx, b.name); err != nil {
		return fmt.Errorf("barrier %q: release: %w", b.name, err)
	}
	return nil
}

// Wait blocks until the barrier is down; it returns at once if it is not up.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := b.b.WaitBarrier(ctx, b.name); err != nil {
		return fmt.Errorf("barrier %q: wait: %w", b.name, err)
	}
	return nil
}

// DoubleBarrier makes n participants enter and leave together.
type DoubleBarrier struct {
	s    *coord.Session
	name string
	n    int
	b    driver.Barrierer

	mu      sync.Mutex
	id      string
	entered bool
}

// NewDouble returns participant handle for double barrier name with n
// participants, owned by session s. Each participant uses its own handle.
func NewDouble(s *coord.Session, name string, n int) (*DoubleBarrier, error) {
	if n < 1 {
		return nil, fmt.Errorf("barrier: double barrier %q: count %d, want at least 1", name, n)
	}
	b, err := barrierer(s, name)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &DoubleBarrier{s: s, name: name, n: n, b: b, id: hex.EncodeToString(id[:])}, nil
}

// Name returns the barrier's name.
func (d *DoubleBarrier) Name() string { return d.name }

// Count returns the number of participants the barrier waits for.
func (d *DoubleBarrier) Count() int { return d.n }

// Enter registers this participant and blocks until n participants have
// entered. On error (ctx done, session lost) it withdraws.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entered {
		return fmt.Errorf("barrier %q: enter: %w (already entered)", d.name, coord.ErrExists)
	}
	if err := d.s.Err(); err != nil {
		return fmt.Errorf("barrier %q: %w", d.name, err)
	}
	if err := d.b.EnterDoubleBarrier(ctx, d.s.Driver(), d.name, d.n, d.id); err != nil {
		return fmt.Errorf("barrier %q: enter: %w", d.name, err)
	}
	d.entered = true
	return nil
}

// Leave withdraws this participant and blocks until every participant has
// left (or lost its session).
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.entered {
		return fmt.Errorf("barrier %q: leave: %w (not entered)", d.name, coord.ErrNotHeld)
	}
	if err := d.b.LeaveDoubleBarrier(ctx, d.s.Driver(), d.name, d.id); err != nil {
		return fmt.Errorf("barrier %q: leave: %w", d.name, err)
	}
	d.entered = false
	return nil
}
