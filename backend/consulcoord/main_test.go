package consulcoord

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (session
// renewers, watchers, held-lock monitors, HTTP connections of URL clients).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
