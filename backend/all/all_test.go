package all_test

import (
	"slices"
	"testing"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/all"
)

func TestSchemesRegistered(t *testing.T) {
	got := coord.Schemes()
	for _, s := range []string{"etcd", "etcds", "zk", "zks", "redis", "rediss", "consul", "consuls"} {
		if !slices.Contains(got, s) {
			t.Errorf("scheme %q not registered; have %v", s, got)
		}
	}
}
