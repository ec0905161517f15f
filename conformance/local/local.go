// Package local starts real backend servers (etcd, ZooKeeper, Redis, Consul)
// as local processes on free loopback ports with temporary data directories,
// for tests and the conformance suite. Every server is stopped when the test
// that started it ends, even on failure.
//
// When COORD_REQUIRE_ALL=1 (as in CI) a missing server binary fails the test;
// otherwise the test is skipped with a message saying how to install it.
package local

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Required reports whether every backend is required (COORD_REQUIRE_ALL=1):
// then a missing server is a test failure, never a skip.
func Required() bool {
	v, _ := strconv.ParseBool(os.Getenv("COORD_REQUIRE_ALL"))
	return v
}

// Missing fails t (when Required) or skips it, saying what is missing and how
// to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is missing and COORD_REQUIRE_ALL=1: %s", what, how)
	}
	t.Skipf("%s is missing (%s); set COORD_REQUIRE_ALL=1 to make this a failure", what, how)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server process started by a test.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 4<<20 { // keep memory bounded on chatty servers
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs name with args (env added to the test's environment) in its own
// process group, waits until ready returns nil (polling every 50ms, up to
// timeout), and registers a cleanup that stops it. On failure it prints the
// process's output.
func Start(t testing.TB, name string, args, env []string, ready func(ctx context.Context) error, timeout time.Duration) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: filepath.Base(name), cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d), last 4KiB:\n%s", p.Name, cmd.Process.Pid, tail(p.out.String(), 4096))
		}
	})
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, p.err, tail(p.out.String(), 4096))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v\n%s", name, timeout, err, tail(p.out.String(), 4096))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM to the process group, then SIGKILL after 10s, and waits.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the process group and waits for it to exit.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Pause stops the process group with SIGSTOP; Resume continues it.
func (p *Process) Pause() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused process group.
func (p *Process) Resume() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT) }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TempDir returns a fresh directory removed when the test ends.
func TempDir(t testing.TB, pattern string) string {
	t.Helper()
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// DialReady returns a ready check that succeeds once addr accepts TCP.
func DialReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// ModuleRoot finds the coord module root (the directory holding go.mod with
// module github.com/coordkit/coord), starting from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/coordkit/coord\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod of github.com/coordkit/coord not found above the working directory")
		}
		dir = parent
	}
}

var (
	coordctlOnce sync.Once
	coordctlPath string
	coordctlErr  error
)

// Coordctl builds cmd/coordctl once per test binary (into a temp dir, using
// the Go build cache) and returns its path. COORDCTL_BIN overrides it.
func Coordctl(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COORDCTL_BIN"); p != "" {
		return p
	}
	coordctlOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			coordctlErr = err
			return
		}
		dir, err := os.MkdirTemp("", "coordctl-bin-")
		if err != nil {
			coordctlErr = err
			return
		}
		coordctlPath = filepath.Join(dir, "coordctl")
		cmd := exec.Command("go", "build", "-o", coordctlPath, "./cmd/coordctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			coordctlErr = fmt.Errorf("go build ./cmd/coordctl: %v\n%s", err, out)
		}
	})
	if coordctlErr != nil {
		t.Fatalf("%v", coordctlErr)
	}
	return coordctlPath
}
