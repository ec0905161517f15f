package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"go.uber.org/goleak"
)

// These tests cover the portable layer's own logic (validation, Do's
// loss-cancellation and release) with an in-memory driver; lock behaviour on
// real backends is proved by the conformance suite.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeSession struct{ own *driver.Ownership }

func (s *fakeSession) ID() string                      { return "s" }
func (s *fakeSession) TTL() time.Duration              { return time.Second }
func (s *fakeSession) Done() <-chan struct{}           { return s.own.Done() }
func (s *fakeSession) Err() error                      { return s.own.Err() }
func (s *fakeSession) Close(ctx context.Context) error { s.own.End(coord.ErrSessionClosed); return nil }

type fakeHeld struct {
	*driver.Ownership
	released int
}

func (h *fakeHeld) Token() uint64 { return 7 }
func (h *fakeHeld) Release(ctx context.Context) error {
	h.released++
	if !h.End(coord.ErrNotHeld) {
		return coord.ErrNotHeld
	}
	return nil
}

type fakeLocker struct {
	calls int
	held  *fakeHeld
}

func (f *fakeLocker) NewSession(ctx context.Context, cfg driver.SessionConfig) (driver.Session, error) {
	return &fakeSession{own: driver.NewOwnership()}, nil
}
func (f *fakeLocker) Backend() string { return "fake" }
func (f *fakeLocker) Close() error    { return nil }
func (f *fakeLocker) Lock(ctx context.Context, s driver.Session, name string, o driver.LockOptions) (driver.Held, error) {
	f.calls++
	f.held = &fakeHeld{Ownership: driver.NewOwnership()}
	return f.held, nil
}

type noLocker struct{ *fakeLocker }

func (noLocker) Lock() {} // shadows Locker.Lock with another signature

func session(t *testing.T, d driver.Client) *coord.Session {
	s, err := coord.NewClient(d, "fake://").NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewMutexValidates(t *testing.T) {
	s := session(t, &fakeLocker{})
	for _, name := range []string{"", "../x", "a//b", "nul\x00"} {
		if _, err := NewMutex(s, name); !errors.Is(err, coord.ErrInvalidName) {
			t.Errorf("NewMutex(%q) err = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := NewMutex(session(t, noLocker{&fakeLocker{}}), "x"); !errors.Is(err, coord.ErrUnsupported) {
		t.Errorf("backend without Locker: err = %v, want ErrUnsupported", err)
	}
}

func TestLockOnLostSessionFailsFast(t *testing.T) {
	f := &fakeLocker{}
	s := session(t, f)
	m, err := NewMutex(s, "x")
	if err != nil {
		t.Fatal(err)
	}
	s.Driver().(*fakeSession).own.End(coord.ErrSessionExpired)
	if _, err := m.Lock(context.Background()); !errors.Is(err, coord.ErrSessionExpired) {
		t.Fatalf("err = %v, want ErrSessionExpired", err)
	}
	if f.calls != 0 {
		t.Fatalf("driver called %d times for a lost session", f.calls)
	}
}

func TestDoCancelsOnLossAndReportsIt(t *testing.T) {
	f := &fakeLocker{}
	m, err := NewMutex(session(t, f), "x")
	if err != nil {
		t.Fatal(err)
	}
	err = Do(context.Background(), m, func(ctx context.Context) error {
		f.held.End(coord.Lost(coord.ErrSessionExpired))
		select {
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), ErrLockLost) {
				t.Errorf("cause = %v, want ErrLockLost", context.Cause(ctx))
			}
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("fn's context was not cancelled on loss")
		}
	})
	if !errors.Is(err, ErrLockLost) || !errors.Is(err, coord.ErrSessionExpired) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do err = %v, want fn's error joined with the loss", err)
	}
}

func TestDoReleases(t *testing.T) {
	f := &fakeLocker{}
	m, err := NewMutex(session(t, f), "x")
	if err != nil {
		t.Fatal(err)
	}
	want := errors.New("work failed")
	if err := Do(context.Background(), m, func(ctx context.Context) error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do err = %v, want fn's error", err)
	}
	if f.held.released != 1 || !errors.Is(f.held.Err(), ErrNotHeld) {
		t.Fatalf("released %d times, Err %v", f.held.released, f.held.Err())
	}
}
