package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBarrierHoldWaitRelease(t *testing.T) {
	s := startServer(t)
	// Not up: wait returns at once.
	if r := coordctl(t, s.env, "barrier", "wait", "gate"); r.code != 0 {
		t.Fatalf("wait on a barrier that is down: exit %d\nstderr: %s", r.code, r.stderr)
	}

	h := start(t, s.env, "barrier", "hold", "gate")
	waitFor(t, 15*time.Second, "barrier raised", func() bool { return strings.Contains(h.stdout.String(), "raised barrier name=gate\n") })
	if r := coordctl(t, s.env, "barrier", "wait", "--timeout", "300ms", "gate"); r.code != 3 || r.elapsed < 300*time.Millisecond {
		t.Fatalf("wait --timeout 300ms on a raised barrier: exit %d after %s, want 3\nstderr: %s", r.code, r.elapsed, r.stderr)
	}
	if r := coordctl(t, s.env, "barrier", "hold", "gate"); r.code != 3 || !strings.Contains(r.stderr, "already up") {
		t.Fatalf("second hold: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	w := start(t, s.env, "barrier", "wait", "gate")
	time.Sleep(300 * time.Millisecond)
	select {
	case <-w.done:
		t.Fatalf("wait returned while the barrier is up: %+v", w.res)
	default:
	}
	if r := coordctl(t, s.env, "barrier", "release", "gate"); r.code != 0 {
		t.Fatalf("release: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := w.wait(t, 10*time.Second); r.code != 0 {
		t.Fatalf("wait after release: exit %d\nstderr: %s", r.code, r.stderr)
	}
	// The holder notices it was released elsewhere and exits 0.
	if r := h.wait(t, 10*time.Second); r.code != 0 || !strings.Contains(r.stdout, "released barrier name=gate") {
		t.Fatalf("holder after release: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := coordctl(t, s.env, "barrier", "release", "gate"); r.code != 0 {
		t.Fatalf("release of a barrier that is down: exit %d\nstderr: %s", r.code, r.stderr)
	}

	// SIGTERM to the holder lowers it.
	h = start(t, s.env, "--output", "json", "barrier", "hold", "gate")
	waitFor(t, 15*time.Second, "barrier raised", func() bool { return strings.Contains(h.stdout.String(), `"event":"raised"`) })
	w = start(t, s.env, "barrier", "wait", "gate")
	time.Sleep(300 * time.Millisecond)
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	r := h.wait(t, 10*time.Second)
	if r.code != 0 {
		t.Fatalf("holder after SIGTERM: exit %d\nstderr: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last struct{ Event, Barrier string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Event != "lowered" || last.Barrier != "gate" {
		t.Fatalf("holder's last JSON line %q (%v), want lowered", lines[len(lines)-1], err)
	}
	if r := w.wait(t, 10*time.Second); r.code != 0 {
		t.Fatalf("wait after the holder stopped: exit %d\nstderr: %s", r.code, r.stderr)
	}

	// A holder whose session is lost exits 4; waiters go on.
	h = start(t, s.env, "barrier", "hold", "gate")
	waitFor(t, 15*time.Second, "barrier raised", func() bool { return strings.Contains(h.stdout.String(), "raised") })
	s.revokeAll(t)
	if r := coordctl(t, s.env, "barrier", "wait", "--timeout", "10s", "gate"); r.code != 0 {
		t.Fatalf("wait after the holder's session expired: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := h.wait(t, 10*time.Second); r.code != 4 || !strings.Contains(r.stderr, "session ended") {
		t.Fatalf("holder whose session expired: exit %d, want 4\nstderr: %s", r.code, r.stderr)
	}
}

func TestBarrierEnterRunsCMDsOnceAllEntered(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	// Each CMD records that it started; the third also takes a while and
	// records when it is done: nobody may leave before it is.
	cmd := func(i string, slow bool) []string {
		body := `touch "$0/started.` + i + `"; test "$COORD_BARRIER_NAME $COORD_BARRIER_COUNT" = "db 3" || exit 9`
		if slow {
			body += `; sleep 1; touch "$0/slow-done"`
		}
		return []string{"sh", "-c", body + "; exit 5", dir}
	}
	p1 := start(t, s.env, append([]string{"barrier", "enter", "--count", "3", "db", "--"}, cmd("1", false)...)...)
	p2 := start(t, s.env, append([]string{"barrier", "enter", "--count", "3", "db", "--"}, cmd("2", false)...)...)
	waitFor(t, 15*time.Second, "two participants entered", func() bool { return s.entries(t, "barrier", "db") == 2 })
	time.Sleep(300 * time.Millisecond)
	if m, _ := filepath.Glob(filepath.Join(dir, "started.*")); len(m) != 0 {
		t.Fatalf("CMDs %q ran with 2 of 3 participants", m)
	}
	p3 := start(t, s.env, append([]string{"barrier", "enter", "--count", "3", "db", "--"}, cmd("3", true)...)...)
	for _, p := range []*proc{p1, p2, p3} {
		r := p.wait(t, 20*time.Second)
		if r.code != 5 {
			t.Fatalf("exit %d, want CMD's 5\nstderr: %s", r.code, r.stderr)
		}
		// Leaving waits for everyone: the slow CMD ended before anyone exited.
		if !exists(filepath.Join(dir, "slow-done")) {
			t.Fatalf("a participant left before the slow one's CMD ended")
		}
	}
	for _, i := range []string{"1", "2", "3"} {
		if !exists(filepath.Join(dir, "started."+i)) {
			t.Fatalf("CMD %s never ran", i)
		}
	}
	if n := s.entries(t, "barrier", "db"); n != 0 {
		t.Fatalf("%d participants left over", n)
	}

	// Without CMD: a rendezvous; and the name is reusable.
	a := start(t, s.env, "barrier", "enter", "--count", "2", "db")
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(a.stdout.String(), "entered") {
		t.Fatalf("entered alone: %q", a.stdout.String())
	}
	b := coordctl(t, s.env, "barrier", "enter", "--count", "2", "db")
	ra := a.wait(t, 10*time.Second)
	for _, r := range []result{ra, b} {
		if r.code != 0 || r.stdout != "entered barrier name=db count=2\nleft barrier name=db\n" {
			t.Fatalf("rendezvous: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	}

	// --timeout: fewer participants than --count → exit 3, nothing run, entry withdrawn.
	ran := filepath.Join(dir, "ran")
	r := coordctl(t, s.env, "barrier", "enter", "--count", "2", "--timeout", "300ms", "db", "--", "touch", ran)
	if r.code != 3 || exists(ran) {
		t.Fatalf("enter --timeout with 1 of 2: exit %d (ran: %v)\nstderr: %s", r.code, exists(ran), r.stderr)
	}
	if n := s.entries(t, "barrier", "db"); n != 0 {
		t.Fatalf("%d participants left after a timed-out enter", n)
	}
}

func TestBarrierEnterInterrupted(t *testing.T) {
	s := startServer(t)
	ran := filepath.Join(t.TempDir(), "ran")
	p := start(t, s.env, "barrier", "enter", "--count", "2", "x", "--", "touch", ran)
	waitFor(t, 15*time.Second, "participant entered", func() bool { return s.entries(t, "barrier", "x") == 1 })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if r := p.wait(t, 10*time.Second); r.code != 3 || exists(ran) {
		t.Fatalf("SIGINT while entering: exit %d (ran: %v), want 3\nstderr: %s", r.code, exists(ran), r.stderr)
	}
	if n := s.entries(t, "barrier", "x"); n != 0 {
		t.Fatalf("%d participants left after an interrupted enter", n)
	}
	_ = os.Remove(ran)
}

func TestBarrierUsage(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{"barrier"},
		{"barrier", "nosuch", "x"},
		{"barrier", "hold"},
		{"barrier", "hold", "a", "b"},
		{"barrier", "hold", "x", "--", "true"},
		{"barrier", "wait", "--timeout", "-1s", "x"},
		{"barrier", "enter", "x", "--", "true"},
		{"barrier", "enter", "--count", "0", "x"},
		{"barrier", "enter", "--count", "2", "x", "--"},
		{"barrier", "leave", "x"},
	} {
		if r := coordctl(t, s.env, args...); r.code != 2 || !strings.Contains(r.stderr, "coordctl: ") {
			t.Errorf("coordctl %q: exit %d, want 2\nstderr: %s", args, r.code, r.stderr)
		}
	}
}
