package coord

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is; the recipe packages re-export
// the ones their callers need.
var (
	// ErrLocked is returned by TryLock when another holder has the lock.
	ErrLocked = errors.New("coord: locked by another holder")
	// ErrNotHeld is returned when releasing an ownership that was already
	// released or lost, and by Guard.Err after a release.
	ErrNotHeld = errors.New("coord: not held")
	// ErrLockLost wraps the cause when a lock ended without a release
	// (session expired, key removed by someone else, server reset).
	ErrLockLost = errors.New("coord: lock lost")
	// ErrSessionExpired means the server expired the session, or it could not
	// be renewed before its TTL ran out.
	ErrSessionExpired = errors.New("coord: session expired")
	// ErrSessionClosed means the session was closed by its owner.
	ErrSessionClosed = errors.New("coord: session closed")
	// ErrInvalidName is returned for a name the backends cannot store safely.
	ErrInvalidName = errors.New("coord: invalid name")
	// ErrInvalidURL is returned for a malformed backend URL.
	ErrInvalidURL = errors.New("coord: invalid backend URL")
	// ErrUnknownScheme is returned by Open for a URL scheme no registered
	// backend serves.
	ErrUnknownScheme = errors.New("coord: unknown backend scheme")
	// ErrUnavailable means the backend could not be reached or did not answer
	// in time.
	ErrUnavailable = errors.New("coord: backend unavailable")
	// ErrUnsupported means the backend does not implement the recipe.
	ErrUnsupported = errors.New("coord: not supported by this backend")
	// ErrCorrupt means coord found a value under its namespace that it did not
	// write or cannot decode.
	ErrCorrupt = errors.New("coord: unexpected data in coord's namespace")
)

// Lost returns the error a lock-like ownership reports when it ends without a
// release: it matches ErrLockLost and cause with errors.Is.
func Lost(cause error) error {
	if cause == nil {
		return ErrLockLost
	}
	return fmt.Errorf("%w: %w", ErrLockLost, cause)
}

// Sentinel errors of the election and barrier recipes.
var (
	// ErrNoLeader is returned by Leader when no candidate holds the election.
	ErrNoLeader = errors.New("coord: no leader")
	// ErrNotLeader is returned by Proclaim and Resign when the term has ended.
	ErrNotLeader = errors.New("coord: not the leader")
	// ErrLeadershipLost wraps the cause when a term ended without a Resign.
	ErrLeadershipLost = errors.New("coord: leadership lost")
	// ErrExists is returned when creating something that is already there
	// (a barrier that is already held).
	ErrExists = errors.New("coord: already exists")
)

// LostLeadership returns the error a leadership term reports when it ends
// without a Resign: it matches ErrLeadershipLost and cause with errors.Is.
func LostLeadership(cause error) error {
	if cause == nil {
		return ErrLeadershipLost
	}
	return fmt.Errorf("%w: %w", ErrLeadershipLost, cause)
}
