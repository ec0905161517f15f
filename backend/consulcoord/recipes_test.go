package consulcoord

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
)

// TestRecipes runs the Consul-specific tests of the election, read-write
// lock, semaphore and barriers against one local agent; run one with
// -run 'TestRecipes/Name'.
func TestRecipes(t *testing.T) {
	a := local.StartConsul(t)
	cli, _ := nativeClient(t, a.Addr)
	tests := []struct {
		name string
		fn   func(t *testing.T, a *local.Consul, cli *api.Client)
	}{
		{"RecipeKeyLayout", testRecipeKeyLayout},
		{"ElectionFIFOAndHerdFree", testElectionHerdFree},
		{"ElectionSameSessionCandidatesExclude", testElectionSameSession},
		{"ElectionLockDelay", testElectionLockDelay},
		{"ProclaimKeepsCandidacyAcquired", testProclaim},
		{"ProclaimAfterCandidacyDeleted", testProclaimDeleted},
		{"FailedResignLeavesTermHeld", testFailedResign},
		{"ObserveRecoversAfterPartition", testObservePartition},
		{"ObserveIgnoresQueueingCandidates", testObserveQuiet},
		{"ElectionCorruptEntry", testElectionCorrupt},
		{"RWLockFIFO", testRWLockFIFO},
		{"RWLockTry", testRWLockTry},
		{"RWLockWriterHerdFree", testRWLockWriterHerdFree},
		{"SemaphoreFIFO", testSemaphoreFIFO},
		{"SemaphoreHerdFree", testSemaphoreHerdFree},
		{"SemaphoreCancelledMiddleWaiter", testSemaphoreCancelledMiddle},
		{"BarrierHoldRelease", testBarrierHoldRelease},
		{"BarrierLockDelay", testBarrierLockDelay},
		{"DoubleBarrierLateArrivalAndReuse", testDoubleLateAndReuse},
		{"DoubleBarrierCancelledEnter", testDoubleCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, a, cli)
		})
	}
}

// recipeContenders counts name's entries of recipe.
func recipeContenders(t testing.TB, c *coord.Client, recipe, name string) int {
	t.Helper()
	n, err := c.Driver().(*client).Contenders(ctxFor(t, 5*time.Second), recipe, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRecipe polls the server (a test observation only) until name has want
// entries of recipe.
func waitRecipe(t testing.TB, c *coord.Client, recipe, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := recipeContenders(t, c, recipe, name)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %d entries, want %d", recipe, name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counted returns a coord client over its own native client whose KV and
// transaction requests are counted.
func counted(t testing.TB, a *local.Consul, ns string) (*coord.Client, *countingTransport) {
	t.Helper()
	cli, ct := nativeClient(t, a.Addr)
	c, err := New(cli, coord.WithNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	return c, ct
}

// quiet fails t if a counter moved since before (for waiters that must not
// wake).
func quiet(t testing.TB, what string, ct *countingTransport, before int64) {
	t.Helper()
	if n := ct.n.Load() - before; n != 0 {
		t.Errorf("%s sent %d requests; want none (not woken)", what, n)
	}
}

func testRecipeKeyLayout(t *testing.T, a *local.Consul, cli *api.Client) {
	ns := uniqueNS(t)
	c := openURL(t, a.URL+"/apps", coord.WithNamespace(ns))
	s := newSession(t, c)
	ctx := ctxFor(t, 10*time.Second)
	d := c.Driver().(*client)
	term, err := d.Campaign(ctx, s.Driver(), "e/x", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.RWLock(ctx, s.Driver(), "rw", true, driver.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sem, err := d.Acquire(ctx, s.Driver(), "sem", 2, driver.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.HoldBarrier(ctx, s.Driver(), "b"); err != nil {
		t.Fatal(err)
	}
	if err := d.EnterDoubleBarrier(ctx, s.Driver(), "db", 1, "p1"); err != nil {
		t.Fatal(err)
	}
	keys := keysUnder(t, cli, "apps/"+ns+"/")
	want := map[string]bool{
		"apps/" + ns + "/barrier-up/b":     true,
		"apps/" + ns + "/barrier/db/p1":    true,
		"apps/" + ns + "/barrier-ready/db": true,
		"apps/" + ns + "/election/e/x/":    false, // prefixes, checked below
		"apps/" + ns + "/rwlock/rw/":       false,
		"apps/" + ns + "/semaphore/sem/":   false,
	}
	if len(keys) != 6 {
		t.Fatalf("keys %v, want 6", keys)
	}
	for _, k := range keys {
		ok := want[k]
		for p, exact := range want {
			if !exact && strings.HasPrefix(k, p+s.ID()+"-") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("unexpected key %s", k)
		}
	}
	for _, k := range keys {
		kv, _, err := cli.KV().Get(k, nil)
		if err != nil || kv == nil || kv.Session != s.ID() {
			t.Errorf("key %s: %+v, %v; want acquired by session %s", k, kv, err, s.ID())
		}
	}
	for recipe, name := range map[string]string{"election": "e/x", "rwlock": "rw", "semaphore": "sem", "barrier": "db"} {
		if n := recipeContenders(t, c, recipe, name); n != 1 {
			t.Errorf("Contenders(%s, %s) = %d, want 1", recipe, name, n)
		}
	}
	for _, h := range []driver.Held{term, r, sem} {
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.LeaveDoubleBarrier(ctx, s.Driver(), "db", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseBarrier(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, cli, "apps/"+ns+"/"); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}
