package conformance_test

import (
	"testing"
	"time"

	_ "github.com/coordkit/coord/backend/consulcoord" // registers consul:// and consuls://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// TestConsul runs the suite against a local single-node Consul agent with
// Consul's minimum session TTL. Consul invalidates a session that is no
// longer renewed only after twice its TTL, then deletes its keys, so a killed
// holder is succeeded within 2×TTL (+2s for the handoff on a busy machine).
func TestConsul(t *testing.T) {
	agent := local.StartConsul(t)
	const ttl = 10 * time.Second
	conformance.RunAll(t, conformance.URLHarness{Name: "consul", Addr: agent.URL, SessionTTL: ttl, Bound: 2*ttl + 2*time.Second})
}
