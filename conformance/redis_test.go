package conformance_test

import (
	"testing"
	"time"

	_ "github.com/coordkit/coord/backend/rediscoord" // registers redis:// and rediss://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// TestRedis runs the suite against a local single redis-server. Sessions
// expire by the driver's kill script, which deletes the session key and what
// it owns; the heartbeat renews every TTL/3.
func TestRedis(t *testing.T) {
	srv := local.StartRedis(t)
	conformance.RunAll(t, conformance.URLHarness{Name: "redis", Addr: srv.URL, SessionTTL: 2 * time.Second})
}
