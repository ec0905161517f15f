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
// fails it under COORD_REQUIRE_ALL=1). extraArgs are appended to the command
// line, e.g. "--user", "alice", "on", ">secret", "~*", "&*", "+@all".
func StartRedis(t testing.TB, extraArgs ...string) *Redis {
	t.Helper()
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := startRedis(t, append([]string{"--port", strconv.Itoa(port)}, extraArgs...), RedisPing(addr))
	if r != nil {
		r.URL, r.Addr = "redis://"+addr, addr
	}
	return r
}

// RedisTLS names the PEM files of a TLS-only Redis server.
type RedisTLS struct {
	// CertFile and KeyFile are the server's certificate and key.
	CertFile, KeyFile string
	// CAFile verifies client certificates; with it the server requires them.
	CAFile string
}

// StartRedisTLS is StartRedis for a server that accepts only TLS (with client
// certificates verified against tc.CAFile). URL is "rediss://127.0.0.1:PORT";
// the ready check is a TLS handshake.
func StartRedisTLS(t testing.TB, tc RedisTLS, extraArgs ...string) *Redis {
	t.Helper()
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{
		"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", tc.CertFile, "--tls-key-file", tc.KeyFile,
		"--tls-ca-cert-file", tc.CAFile, "--tls-auth-clients", "yes",
	}, extraArgs...)
	r := startRedis(t, args, DialReady(addr))
	if r != nil {
		r.URL, r.Addr = "rediss://"+addr, addr
	}
	return r
}

func startRedis(t testing.TB, portArgs []string, ready func(context.Context) error) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server", "apt-get install redis-server")
		return nil
	}
	dir := TempDir(t, "coord-redis-")
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--daemonize", "no",
		"--logfile", "",
		"--databases", "16",
	}
	p := Start(t, bin, append(args, portArgs...), nil, ready, 15*time.Second)
	return &Redis{Dir: dir, Process: p}
}

// RedisPing returns a ready check that succeeds once the Redis server at addr
// answers PING (with +PONG, or -NOAUTH when it requires a password), speaking
// RESP over a plain TCP connection.
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
		// NOAUTH: the server answers but wants a password (--requirepass).
		if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
			return fmt.Errorf("redis %s answered PING with %q", addr, strings.TrimSpace(line))
		}
		return nil
	}
}
