package local

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server process started by StartRedis.
type Redis struct {
	// URL is the backend URL, "redis://127.0.0.1:PORT".
	URL string
	// Addr is the server's "127.0.0.1:PORT".
	Addr string
	// Dir is the server's data directory (append-only file).
	Dir string
	// Process is the running server; Kill, Pause and Resume inject faults.
	Process *Process
}

// StartRedis starts a single redis-server on a free loopback port with a
// temporary data directory (append-only file, fsync every second, no RDB
// snapshots, no configuration file read) and waits until it answers PING. The
// server is stopped when t ends. A missing redis-server skips the test (or
// fails it under COORD_REQUIRE_ALL=1).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server", "apt-get install redis-server")
		return nil
	}
	dir := TempDir(t, "coord-redis-")
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--daemonize", "no",
		"--logfile", "",
		"--databases", "16",
	}
	p := Start(t, bin, args, nil, RedisPing(addr), 15*time.Second)
	return &Redis{URL: "redis://" + addr, Addr: addr, Dir: dir, Process: p}
}

// RedisPing returns a ready check that succeeds once the Redis server at addr
// answers PING with +PONG, speaking RESP over a plain TCP connection.
func RedisPing(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != "+PONG" {
			return fmt.Errorf("redis %s answered PING with %q", addr, strings.TrimSpace(line))
		}
		return nil
	}
}
