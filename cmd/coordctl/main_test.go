package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/etcdcoord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// result is a finished coordctl run.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// proc is a coordctl process running in the background.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	start          time.Time
	done           chan struct{}
	res            result
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs coordctl with args in the background; it is killed when the
// test ends if still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(local.Coordctl(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	// Own process group, so cleanup can kill coordctl and its CMD together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coordctl: %v", err)
	}
	go func() {
		err := cmd.Wait()
		p.res = result{code: cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String(), elapsed: time.Since(p.start)}
		if err != nil && p.res.code == 0 {
			p.res.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the process to exit.
func (p *proc) wait(t *testing.T, d time.Duration) result {
	t.Helper()
	select {
	case <-p.done:
		return p.res
	case <-time.After(d):
		t.Fatalf("coordctl %v still running after %s\nstdout: %s\nstderr: %s", p.cmd.Args[1:], d, p.stdout, p.stderr)
		return result{}
	}
}

// coordctl runs coordctl with args to completion (at most 30s).
func coordctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return start(t, env, args...).wait(t, 30*time.Second)
}

// waitFor waits up to d until cond holds.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created within %s", path, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// server is a real etcd (a `coordctl dev` process) for one test.
type server struct {
	*local.Etcd
	env []string // COORD_BACKEND and a short COORD_TTL for coordctl runs
}

func startServer(t *testing.T) *server {
	t.Helper()
	e := local.StartEtcd(t)
	return &server{Etcd: e, env: []string{"COORD_BACKEND=" + e.URL, "COORD_TTL=2s", "COORD_NAMESPACE=" + nsFor(t)}}
}

func nsFor(t *testing.T) string {
	return "t-" + strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
}

// hold starts `coordctl lock NAME -- CMD` whose CMD touches a marker file and
// sleeps; it returns once the lock is held.
func (s *server) hold(t *testing.T, name string, extra ...string) *proc {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "held")
	args := append([]string{"lock"}, extra...)
	args = append(args, name, "--", "sh", "-c", `touch "$0"; exec sleep 60`, marker)
	p := start(t, s.env, args...)
	waitFile(t, marker, 15*time.Second)
	return p
}

// contenders counts the lock's contender entries on the server.
func (s *server) contenders(t *testing.T, name string) int {
	t.Helper()
	return s.entries(t, "lock", name)
}

// entries counts the entries coord keeps for recipe ("lock", "election",
// "semaphore", "rwlock", "barrier") and name on the server.
func (s *server) entries(t *testing.T, recipe, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, s.URL, coord.WithNamespace(nsFor(t)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	n, err := c.Driver().(driver.Inspector).Contenders(ctx, recipe, name)
	if err != nil {
		t.Fatalf("contenders: %v", err)
	}
	return n
}

// revokeAll expires every session on the server (etcd: revokes every lease).
func (s *server) revokeAll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer c.Close()
	ls, err := c.Leases(ctx)
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	if len(ls.Leases) == 0 {
		t.Fatalf("no lease to revoke")
	}
	for _, l := range ls.Leases {
		if _, err := c.Revoke(ctx, l.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
	}
}
