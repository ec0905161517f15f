package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trapCMD is a CMD that writes "TERM" to marker when it gets SIGTERM and then
// exits with code; it signals readiness by creating ready.
func trapCMD(marker, ready, code string) []string {
	return []string{"sh", "-c", `trap 'echo TERM > "$0"; exit ` + code + `' TERM; touch "$1"; sleep 60 & wait`, marker, ready}
}

func TestLockLostWhileCMDRuns(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
	args := append([]string{"--ttl", "2s", "lock", "--kill-after", "5s", "lost"}, "--")
	p := start(t, s.env, append(args, trapCMD(marker, ready, "0")...)...)
	waitFile(t, ready, 15*time.Second)

	s.revokeAll(t) // the holder's session expires on the server
	r := p.wait(t, 10*time.Second)
	if r.code != 4 {
		t.Fatalf("exit %d, want 4 (lost)\nstderr: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Fatalf("CMD did not get SIGTERM (marker %q, %v)", b, err)
	}
	if !strings.Contains(r.stderr, "lost") {
		t.Fatalf("loss not reported: %s", r.stderr)
	}
}

func TestLockLostKillsStubbornCMD(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	ready, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "pid")
	// CMD ignores SIGTERM (and so does its sleep, which inherits the ignore).
	p := start(t, s.env, "--ttl", "2s", "lock", "--kill-after", "1s", "stubborn", "--",
		"sh", "-c", `trap '' TERM; echo $$ > "$1"; touch "$0"; sleep 60; sleep 60`, ready, pidFile)
	waitFile(t, ready, 15*time.Second)
	lostAt := time.Now()
	s.revokeAll(t)
	r := p.wait(t, 15*time.Second)
	if r.code != 4 {
		t.Fatalf("exit %d, want 4\nstderr: %s", r.code, r.stderr)
	}
	if d := time.Since(lostAt); d < time.Second {
		t.Fatalf("exited %s after the loss, before --kill-after 1s", d)
	}
	if pid := readPID(t, pidFile); alive(pid) {
		t.Fatalf("CMD (pid %d) still alive after SIGKILL", pid)
	}
}

func TestSIGTERMForwardedAndLockReleased(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
	// A TTL well above the test's own waits: "released at once" must not be
	// confused with a lease that ran out, and a loaded CI machine must not
	// expire the second process's fresh session.
	env := append(append([]string(nil), s.env...), "COORD_TTL=6s")
	p := start(t, env, append([]string{"lock", "fwd", "--"}, trapCMD(marker, ready, "5")...)...)
	waitFile(t, ready, 15*time.Second)

	_ = p.cmd.Process.Signal(syscall.SIGTERM) // to coordctl only, not its group
	r := p.wait(t, 10*time.Second)
	if r.code != 5 {
		t.Fatalf("exit %d, want CMD's 5\nstderr: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Fatalf("SIGTERM not forwarded to CMD (marker %q, %v)", b, err)
	}
	// Released at once (not after the TTL): another process takes it now.
	if r := coordctl(t, env, "lock", "--try", "fwd", "--", "true"); r.code != 0 {
		t.Fatalf("lock not released: --try exit %d\nstderr: %s", r.code, r.stderr)
	}
}

func TestKilledHolderReplacedWithinTTL(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	ready, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "pid")
	holder := start(t, s.env, "lock", "killed", "--", "sh", "-c", `echo $$ > "$1"; touch "$0"; exec sleep 60`, ready, pidFile)
	waitFile(t, ready, 15*time.Second)
	_ = holder.cmd.Process.Signal(syscall.SIGKILL) // coordctl dies without releasing
	killedAt := time.Now()
	r := coordctl(t, s.env, "lock", "--wait", "10s", "killed", "--", "true")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	if d := time.Since(killedAt); d > 3*time.Second+time.Second/2 { // TTL 2s + 1s + process start
		t.Fatalf("took %s to take over from a killed holder with TTL 2s", d)
	}
	holder.wait(t, 5*time.Second)
	// CMD must not outlive its coordctl: it would run without the lock.
	pid := readPID(t, pidFile)
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("CMD (pid %d) still running after its coordctl was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}
