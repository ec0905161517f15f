package conformance_test

import (
	"testing"
	"time"

	_ "github.com/coordkit/coord/backend/etcdcoord" // registers etcd:// and etcds://
	"github.com/coordkit/coord/conformance"
	"github.com/coordkit/coord/conformance/local"
)

// TestEtcd runs the suite against a single-member etcd run as a separate
// `coordctl dev` process. Sessions expire by lease revoke; 2s is etcd's
// minimum lease TTL with default server settings.
func TestEtcd(t *testing.T) {
	srv := local.StartEtcd(t)
	conformance.RunAll(t, conformance.URLHarness{Name: "etcd", Addr: srv.URL, SessionTTL: 2 * time.Second})
}
