package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countingCMD is a CMD run under a semaphore or read lock: it marks itself
// present in dir, waits (up to 5s) until want holders are present, logs how
// many are present to log at its start and end, then leaves.
func countingCMD(dir, log string, want int) []string {
	return []string{"sh", "-c", `touch "$0/$$"; i=0
while [ "$(ls "$0" | wc -l)" -lt ` + strconv.Itoa(want) + ` ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
ls "$0" | wc -l >> "$1"; sleep 0.3; ls "$0" | wc -l >> "$1"; rm "$0/$$"`, dir, log}
}

func TestLockLimit(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	present, log := filepath.Join(dir, "present"), filepath.Join(dir, "log")
	if err := os.Mkdir(present, 0o755); err != nil {
		t.Fatal(err)
	}
	var ps []*proc
	for i := 0; i < 5; i++ {
		ps = append(ps, start(t, s.env, append([]string{"lock", "--limit", "2", "sem", "--"}, countingCMD(present, log, 2)...)...))
	}
	for _, p := range ps {
		if r := p.wait(t, 60*time.Second); r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
	}
	lines := readLines(t, log)
	if len(lines) != 10 {
		t.Fatalf("log %q, want 10 lines", lines)
	}
	overlapped := false
	for _, l := range lines {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 || n > 2 {
			t.Fatalf("%q CMDs ran at once under --limit 2 (log %q)", l, lines)
		}
		overlapped = overlapped || n == 2
	}
	if !overlapped {
		t.Fatalf("two CMDs never ran together under --limit 2: %q", lines)
	}
	if n := s.entries(t, "semaphore", "sem"); n != 0 {
		t.Fatalf("%d semaphore entries left", n)
	}

	// Both permits held: --try exits 3 and runs nothing.
	h1 := s.hold(t, "full", "--limit", "2")
	h2 := s.hold(t, "full", "--limit", "2")
	r := coordctl(t, s.env, "lock", "--limit", "2", "--try", "full", "--", "true")
	if r.code != 3 || !strings.Contains(r.stderr, "permit") {
		t.Fatalf("--try on a full semaphore: exit %d\nstderr: %s", r.code, r.stderr)
	}
	// A plain lock of the same name is a different lock.
	if r := coordctl(t, s.env, "lock", "--try", "full", "--", "true"); r.code != 0 {
		t.Fatalf("plain lock beside a semaphore of the same name: exit %d\nstderr: %s", r.code, r.stderr)
	}
	stopHolder(t, h1)
	if r := coordctl(t, s.env, "lock", "--limit", "2", "--try", "full", "--", "true"); r.code != 0 {
		t.Fatalf("--try with a free permit: exit %d\nstderr: %s", r.code, r.stderr)
	}
	stopHolder(t, h2)
}

func TestLockSharedAndWrite(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	r1, r2, stop := filepath.Join(dir, "r1"), filepath.Join(dir, "r2"), filepath.Join(dir, "stop")
	// Two readers hold the lock together.
	p1 := start(t, s.env, append([]string{"lock", "--shared", "rw", "--"}, untilFile(r1, stop)...)...)
	p2 := start(t, s.env, append([]string{"lock", "--shared", "rw", "--"}, untilFile(r2, stop)...)...)
	waitFile(t, r1, 15*time.Second)
	waitFile(t, r2, 15*time.Second)

	if r := coordctl(t, s.env, "lock", "--write", "--try", "rw", "--", "true"); r.code != 3 {
		t.Fatalf("--write --try while readers hold: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	// A waiting writer runs only once both readers are gone, and alone.
	wrote := filepath.Join(dir, "wrote")
	w := start(t, s.env, "lock", "--write", "rw", "--", "sh", "-c",
		`ls "$0" > "$1"; touch "$1.w"; while [ ! -e "$0/stopw" ]; do sleep 0.05; done`, dir, wrote)
	waitFor(t, 15*time.Second, "writer queued", func() bool { return s.entries(t, "rwlock", "rw") == 3 })
	time.Sleep(300 * time.Millisecond)
	if exists(wrote) {
		t.Fatalf("writer ran while readers held the lock")
	}
	// A reader arriving after the waiting writer waits for it (FIFO).
	if r := coordctl(t, s.env, "lock", "--shared", "--try", "rw", "--", "true"); r.code != 3 {
		t.Fatalf("--shared --try behind a waiting writer: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{p1, p2} {
		if r := p.wait(t, 15*time.Second); r.code != 0 {
			t.Fatalf("reader: exit %d\nstderr: %s", r.code, r.stderr)
		}
	}
	waitFile(t, wrote+".w", 15*time.Second)
	if r := coordctl(t, s.env, "lock", "--shared", "--try", "rw", "--", "true"); r.code != 3 {
		t.Fatalf("--shared --try while a writer holds: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	_ = os.WriteFile(filepath.Join(dir, "stopw"), nil, 0o644)
	if r := w.wait(t, 15*time.Second); r.code != 0 {
		t.Fatalf("writer: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := coordctl(t, s.env, "lock", "--shared", "--try", "rw", "--", "true"); r.code != 0 {
		t.Fatalf("--shared --try on a free lock: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if n := s.entries(t, "rwlock", "rw"); n != 0 {
		t.Fatalf("%d rwlock entries left", n)
	}
}

func TestLockKindUsage(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{"lock", "--limit", "2", "--shared", "n", "--", "true"},
		{"lock", "--limit", "2", "--write", "n", "--", "true"},
		{"lock", "--shared", "--write", "n", "--", "true"},
		{"lock", "--limit", "0", "n", "--", "true"},
		{"lock", "n", "--limit", "x", "--", "true"},
	} {
		if r := coordctl(t, s.env, args...); r.code != 2 || !strings.Contains(r.stderr, "coordctl: ") {
			t.Errorf("coordctl %q: exit %d, want 2\nstderr: %s", args, r.code, r.stderr)
		}
	}
}

// stopHolder ends a holder started by server.hold (SIGTERM reaches its
// sleep through coordctl) and waits for it.
func stopHolder(t *testing.T, p *proc) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	p.wait(t, 15*time.Second)
}
