package conformance_test

import (
	"testing"
	"time"

	_ "github.com/coordkit/coord/backend/zkcoord" // registers zk:// and zks://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// TestZooKeeper runs the suite against a local standalone ZooKeeper (it
// grants session timeouts of 1s..60s). Sessions expire on the server: the
// driver attaches to the session with its ID and password and sends
// closeSession, as Curator's KillSession does.
func TestZooKeeper(t *testing.T) {
	srv := local.StartZooKeeper(t)
	conformance.RunAll(t, conformance.URLHarness{Name: "zookeeper", Addr: srv.URL, SessionTTL: 2 * time.Second})
}
