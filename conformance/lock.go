package conformance

import "testing"

// RunLock runs the lock contract (SPEC §3) against h.
func RunLock(t *testing.T, h Harness) {
	t.Helper()
	// Cases are being written; see lock_cases.go.
	_ = h
}
