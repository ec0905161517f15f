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

// TestElectOnOtherBackends runs elect, elect --observe and leader against
// Redis, expiring the leader's session through the backend's driver.Expirer.
func TestElectOnOtherBackends(t *testing.T) {
	url := local.StartRedis(t).URL
	env := []string{"COORD_BACKEND=" + url, "COORD_TTL=2s", "COORD_NAMESPACE=" + nsFor(t)}

	obs := start(t, env, "elect", "--observe", "e")
	waitFor(t, 15*time.Second, "observer prints no leader", func() bool { return obs.stdout.String() == "no leader name=e\n" })
	r := coordctl(t, env, "elect", "--value", "v1", "e", "--", "sh", "-c",
		`test "$COORD_ELECTION_NAME" = e && test -n "$COORD_FENCING_TOKEN" && exit 7`)
	if r.code != 7 {
		t.Fatalf("elect: exit %d, want CMD's 7\nstderr: %s", r.code, r.stderr)
	}
	if r := coordctl(t, env, "leader", "e"); r.code != 3 {
		t.Fatalf("leader after resign: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
	p := start(t, env, append([]string{"--output", "json", "elect", "--value", "v2", "--kill-after", "5s", "e", "--"}, trapCMD(marker, ready, "0")...)...)
	waitFile(t, ready, 15*time.Second)
	if r := coordctl(t, env, "leader", "e"); r.code != 0 || !strings.HasSuffix(strings.TrimSpace(r.stdout), "value=v2") {
		t.Fatalf("leader: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 10*time.Second, "observer sees v2", func() bool { return strings.Contains(obs.stdout.String(), "value=v2\n") })

	expire(t, url, nsFor(t), eventSession(t, p.stderr.String(), "elected"))
	if r := p.wait(t, 15*time.Second); r.code != 4 {
		t.Fatalf("exit %d after the leader's session expired, want 4\nstderr: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Fatalf("CMD did not get SIGTERM (marker %q, %v)", b, err)
	}
	waitFor(t, 10*time.Second, "observer sees no leader", func() bool {
		return strings.HasSuffix(obs.stdout.String(), "no leader name=e\n")
	})
	_ = obs.cmd.Process.Signal(syscall.SIGINT)
	if r := obs.wait(t, 10*time.Second); r.code != 0 {
		t.Fatalf("observer after SIGINT: exit %d\nstderr: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(obs.res.stdout), "\n")
	if len(lines) < 3 || lines[0] != "no leader name=e" {
		t.Fatalf("observer printed %q", lines)
	}
	var last uint64
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "leader name=e token="); ok {
			tok, _, _ := strings.Cut(rest, " ")
			if n := atou(t, tok); n <= last {
				t.Fatalf("observer went back from token %d to %d: %q", last, n, lines)
			} else {
				last = n
			}
		}
	}

	// Semaphore and barrier smoke checks on the same backend.
	if r := coordctl(t, env, "lock", "--limit", "2", "--try", "s", "--", "true"); r.code != 0 {
		t.Fatalf("lock --limit: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := coordctl(t, env, "barrier", "enter", "--count", "1", "b", "--", "sh", "-c", "exit 6"); r.code != 6 {
		t.Fatalf("barrier enter --count 1: exit %d, want 6\nstderr: %s", r.code, r.stderr)
	}
}

// eventSession finds the session ID in coordctl's JSON event named name.
func eventSession(t *testing.T, stderr, name string) string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		var ev struct{ Event, Session string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == name && ev.Session != "" {
			return ev.Session
		}
	}
	t.Fatalf("no %s event with a session in %q", name, stderr)
	return ""
}
