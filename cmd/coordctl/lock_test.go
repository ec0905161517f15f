package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coord/conformance/local"
)

func TestLockRunsCMDWithEnvAndExitCode(t *testing.T) {
	s := startServer(t)
	var last uint64
	for i, want := range []int{7, 0, 42} {
		r := coordctl(t, s.env, "lock", "jobs/report", "--", "sh", "-c",
			`echo "$COORD_LOCK_NAME $COORD_FENCING_TOKEN"; exit `+strconv.Itoa(want))
		if r.code != want {
			t.Fatalf("run %d: exit %d, want CMD's %d\nstderr: %s", i, r.code, want, r.stderr)
		}
		name, tok, _ := strings.Cut(strings.TrimSpace(r.stdout), " ")
		if name != "jobs/report" {
			t.Fatalf("COORD_LOCK_NAME = %q", name)
		}
		n, err := strconv.ParseUint(tok, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("run %d: COORD_FENCING_TOKEN = %q, want a number > %d", i, tok, last)
		}
		last = n
	}
	if n := s.contenders(t, "jobs/report"); n != 0 {
		t.Fatalf("%d contender entries left after coordctl exited", n)
	}
}

func TestLockNotAcquired(t *testing.T) {
	s := startServer(t)
	holder := s.hold(t, "busy")

	r := coordctl(t, s.env, "lock", "--try", "busy", "--", "touch", filepath.Join(t.TempDir(), "ran"))
	if r.code != 3 {
		t.Fatalf("--try on a held lock: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, `"busy"`) || !strings.HasPrefix(r.stderr, "coordctl: ") {
		t.Fatalf("unclear message: %q", r.stderr)
	}

	// With --output json, stderr is JSON lines, the error included.
	r = coordctl(t, s.env, "--output", "json", "lock", "--try", "busy", "--", "true")
	if r.code != 3 {
		t.Fatalf("--try --output json: exit %d\nstderr: %s", r.code, r.stderr)
	}
	var last map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v", line, err)
		}
	}
	if last["event"] != "error" || last["code"] != float64(3) || !strings.Contains(fmt.Sprint(last["message"]), `"busy"`) {
		t.Fatalf("last stderr object %v, want the error with code 3", last)
	}

	// Flags after NAME are accepted too.
	r = coordctl(t, s.env, "lock", "busy", "--try", "--", "true")
	if r.code != 3 {
		t.Fatalf("lock NAME --try: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}

	ran := filepath.Join(t.TempDir(), "ran")
	r = coordctl(t, s.env, "lock", "--wait", "300ms", "busy", "--", "touch", ran)
	if r.code != 3 {
		t.Fatalf("--wait 300ms on a held lock: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	if r.elapsed < 300*time.Millisecond || r.elapsed > 10*time.Second {
		t.Fatalf("--wait 300ms returned after %s", r.elapsed)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatalf("CMD ran although the lock was not acquired")
	}
	if n := s.contenders(t, "busy"); n != 1 {
		t.Fatalf("%d contender entries, want only the holder's", n)
	}

	// SIGTERM while waiting: not acquired, and the waiter leaves no state.
	w := start(t, s.env, "--output", "json", "lock", "busy", "--", "touch", ran)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.stderr.String(), `"waiting"`) || s.contenders(t, "busy") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("waiter never queued; stderr: %s", w.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if r := w.wait(t, 10*time.Second); r.code != 3 {
		t.Fatalf("SIGTERM while waiting: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	if n := s.contenders(t, "busy"); n != 1 {
		t.Fatalf("%d contender entries after the interrupted waiter exited, want 1", n)
	}

	// Once the holder ends, --try succeeds.
	_ = holder.cmd.Process.Signal(syscall.SIGTERM)
	holder.wait(t, 10*time.Second)
	if r := coordctl(t, s.env, "lock", "--try", "busy", "--", "true"); r.code != 0 {
		t.Fatalf("--try on a free lock: exit %d\nstderr: %s", r.code, r.stderr)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{},
		{"nosuchcommand"},
		{"lock"},
		{"lock", "name"},
		{"lock", "name", "--"},
		{"lock", "--bogus", "name", "--", "true"},
		{"lock", "--try", "--wait", "1s", "name", "--", "true"},
		{"lock", "bad//name", "--", "true"},
		{"lock", "name", "extra", "--", "true"},
		{"--output", "xml", "lock", "name", "--", "true"},
		{"--ttl", "-1s", "lock", "name", "--", "true"},
		{"--backend", "etcd://", "lock", "name", "--", "true"},
		{"dev", "extra"},
		{"help", "nosuchcommand"},
	} {
		r := coordctl(t, s.env, args...)
		if r.code != 2 {
			t.Errorf("coordctl %q: exit %d, want 2\nstderr: %s", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "coordctl: ") {
			t.Errorf("coordctl %q: no coordctl: message on stderr: %q", args, r.stderr)
		}
	}
	if r := coordctl(t, s.env, "lock", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--try") {
		t.Errorf("lock --help: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestUnreachableBackend(t *testing.T) {
	port := local.FreePort(t)
	url := fmt.Sprintf("etcd://alice:s3cret-pw@127.0.0.1:%d", port)
	r := coordctl(t, nil, "--backend", url, "--dial-timeout", "1s", "lock", "x", "--", "true")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "s3cret-pw") {
		t.Fatalf("password printed: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("etcd://alice:xxxxx@127.0.0.1:%d", port)) {
		t.Fatalf("redacted URL not named: %s", r.stderr)
	}
	if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); !strings.HasPrefix(r.stderr, "coordctl: ") || lines != 0 {
		t.Fatalf("want one line starting with coordctl: , got %q", r.stderr)
	}
	if r.elapsed > 5*time.Second {
		t.Fatalf("took %s with --dial-timeout 1s", r.elapsed)
	}
}

func TestLockMutualExclusion(t *testing.T) {
	s := startServer(t)
	log := filepath.Join(t.TempDir(), "log")
	const procs = 4
	var ps []*proc
	for i := 0; i < procs; i++ {
		ps = append(ps, start(t, s.env, "lock", "shared", "--", "sh", "-c",
			`echo "start $COORD_FENCING_TOKEN" >> "$0"; sleep 0.2; echo "end $COORD_FENCING_TOKEN" >> "$0"`, log))
	}
	for _, p := range ps {
		if r := p.wait(t, 60*time.Second); r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2*procs {
		t.Fatalf("log has %d lines, want %d: %q", len(lines), 2*procs, lines)
	}
	var last uint64
	for i := 0; i < len(lines); i += 2 {
		tok := strings.TrimPrefix(lines[i], "start ")
		if lines[i] != "start "+tok || lines[i+1] != "end "+tok {
			t.Fatalf("holdings overlap: %q", lines)
		}
		n, _ := strconv.ParseUint(tok, 10, 64)
		if n <= last {
			t.Fatalf("tokens not increasing: %q", lines)
		}
		last = n
	}
}
