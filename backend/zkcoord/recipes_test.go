package zkcoord

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
)

// Helpers shared by the election, read-write lock, semaphore and barrier
// tests.

// count returns the Inspector's count of recipe's entries for name.
func count(t testing.TB, c *coord.Client, recipe, name string) int {
	t.Helper()
	n, err := c.Driver().(driver.Inspector).Contenders(ctxT(t, 5*time.Second), recipe, name)
	if err != nil {
		t.Fatalf("contenders %s %s: %v", recipe, name, err)
	}
	return n
}

// waitCount waits until recipe's name has n entries.
func waitCount(t testing.TB, c *coord.Client, recipe, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := count(t, c, recipe, name); got != n; got = count(t, c, recipe, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s %s has %d entries, want %d", recipe, name, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueNodes lists the contender nodes of dir (a path below the server's
// root) of the given kinds, in queue order, as full paths.
func queueNodes(t testing.TB, addr, dir string, kinds ...string) []string {
	t.Helper()
	children, _, err := rawConn(t, addr).Children(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var out []string
	for _, e := range queueOf(children, kinds...) {
		out = append(out, dir+"/"+e.name)
	}
	return out
}

// waitWatches waits until, for each session ID in want, the server's wchc
// answer lists exactly the wanted paths (in any order) for that session.
func waitWatches(t testing.TB, addr string, want map[string][]string) {
	t.Helper()
	norm := func(p []string) string {
		p = append([]string(nil), p...)
		sort.Strings(p)
		return strings.Join(p, " ")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := local.FourLetter(ctxT(t, 5*time.Second), addr, "wchc")
		if err != nil {
			t.Fatal(err)
		}
		got := parseWCHC(out)
		var diff []string
		for id, paths := range want {
			if norm(got[id]) != norm(paths) {
				diff = append(diff, fmt.Sprintf("session %s watches %v, want %v", id, got[id], paths))
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watches:\n%s", strings.Join(diff, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// notYet fails t if ch delivers within d.
func notYet[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s too early: %v", what, v)
	case <-time.After(d):
	}
}

// recv waits up to d for a value from ch.
func recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %s", what, d)
		var zero T
		return zero
	}
}

func TestProtectedNames(t *testing.T) {
	const g = "0123456789abcdef0123456789abcdef"
	children := []string{
		"_c_" + g + "-write-0000000007",
		"_c_" + g + "-read-0000000003",
		"_c_" + g + "-lock-0000000001",
		"_c_" + g + "-elect-0000000002",
		"_c_" + g + "--0000000004", // no kind
		"_c_" + g + "-read-",       // no sequence
		"_c_" + g + "-read-00x5",   // not digits
		"_c_XYZ-read-0000000000",   // not a GUID
		"#p-abc",
		"nested",
	}
	got := fmt.Sprint(queueOf(children, kindRead, kindWrite))
	want := fmt.Sprint([]entry{
		{"_c_" + g + "-read-0000000003", kindRead, 3},
		{"_c_" + g + "-write-0000000007", kindWrite, 7},
	})
	if got != want {
		t.Fatalf("queueOf = %s, want %s", got, want)
	}
	if q := queueOf(children, kindElect); len(q) != 1 || q[0].seq != 2 {
		t.Fatalf("election queue %v", q)
	}
	if n, first := participants([]string{"#p-b", "#hold", "#p-a", "#ready", "x"}); n != 2 || first != "#p-a" {
		t.Fatalf("participants = %d %q", n, first)
	}
}
