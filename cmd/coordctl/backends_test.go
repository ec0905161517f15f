package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/rediscoord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
)

// TestLockOnOtherBackends runs the main lock paths against another backend
// that is cheap to start locally (Redis), expiring the holder's session
// through the backend's driver.Expirer. (ZooKeeper's Expirer can only expire
// its own client's sessions, and a JVM start is costly; the conformance suite
// runs coordctl against ZooKeeper and Consul.)
func TestLockOnOtherBackends(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"redis", func(t *testing.T) string { return local.StartRedis(t).URL }},
	} {
		t.Run(b.name, func(t *testing.T) {
			url := b.start(t)
			env := []string{"COORD_BACKEND=" + url, "COORD_TTL=2s", "COORD_NAMESPACE=" + nsFor(t)}

			if r := coordctl(t, env, "lock", "n", "--", "sh", "-c", `test -n "$COORD_FENCING_TOKEN" && exit 7`); r.code != 7 {
				t.Fatalf("exit %d, want 7\nstderr: %s", r.code, r.stderr)
			}

			dir := t.TempDir()
			marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
			p := start(t, env, append([]string{"--output", "json", "lock", "--kill-after", "5s", "n", "--"}, trapCMD(marker, ready, "0")...)...)
			waitFile(t, ready, 15*time.Second)
			if r := coordctl(t, env, "lock", "--try", "n", "--", "true"); r.code != 3 {
				t.Fatalf("--try on a held lock: exit %d, want 3\nstderr: %s", r.code, r.stderr)
			}

			expire(t, url, nsFor(t), acquiredSession(t, p.stderr.String()))
			r := p.wait(t, 15*time.Second)
			if r.code != 4 {
				t.Fatalf("exit %d after the session expired, want 4\nstderr: %s", r.code, r.stderr)
			}
			if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
				t.Fatalf("CMD did not get SIGTERM (marker %q, %v)", b, err)
			}

			p = start(t, env, append([]string{"lock", "n", "--"}, trapCMD(marker+"2", ready+"2", "0")...)...)
			waitFile(t, ready+"2", 15*time.Second)
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if r := p.wait(t, 10*time.Second); r.code != 0 {
				t.Fatalf("exit %d after SIGTERM, want CMD's 0\nstderr: %s", r.code, r.stderr)
			}
			if r := coordctl(t, env, "lock", "--try", "n", "--", "true"); r.code != 0 {
				t.Fatalf("lock not released after SIGTERM: --try exit %d\nstderr: %s", r.code, r.stderr)
			}
		})
	}
}

// acquiredSession finds the session ID in coordctl's JSON "acquired" event.
func acquiredSession(t *testing.T, stderr string) string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		var ev struct{ Event, Session string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == "acquired" && ev.Session != "" {
			return ev.Session
		}
	}
	t.Fatalf("no acquired event with a session in %q", stderr)
	return ""
}

func expire(t *testing.T, url, ns, session string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, url, coord.WithNamespace(ns))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	if err := c.Driver().(driver.Expirer).ExpireSession(ctx, session); err != nil {
		t.Fatalf("expire session %s: %v", session, err)
	}
}
