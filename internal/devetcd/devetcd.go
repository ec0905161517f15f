// Package devetcd runs a single-member etcd server inside the current process,
// for `coordctl dev`, `coordctl demo` and tests.
//
// The server is a real etcd (go.etcd.io/etcd/server/v3/embed): same storage,
// same Raft log, same lease and watch semantics as a released etcd binary. It
// is configured for local development only: plain HTTP on the given client
// address, a peer listener on another free loopback port, no authentication,
// no separate metrics listener, and logging switched off. It is not meant to
// be reachable from other machines or to hold data that matters.
package devetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// DefaultListen is the client address used when Config.Listen is empty: the
// address etcd itself and coord's default backend URL use.
const DefaultListen = "127.0.0.1:2379"

// DefaultReadyTimeout bounds how long Start waits for the server to accept
// requests when ctx has no earlier deadline.
const DefaultReadyTimeout = 30 * time.Second

// Config configures an embedded server.
type Config struct {
	// Listen is the client address HOST:PORT (default DefaultListen). Port 0
	// picks a free port; URL and Endpoint report the one chosen.
	Listen string
	// DataDir holds the server's data. Empty means a fresh temporary directory
	// that Close removes. An existing directory written by an earlier server
	// is reopened with its data.
	DataDir string
	// Name is the member name (default "coord-dev").
	Name string
	// UnsafeNoFsync skips fsync on writes: faster, and loses recent writes if
	// the machine (not just the process) crashes. For demos and throwaway data.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd. Close stops it.
type Server struct {
	e        *embed.Etcd
	endpoint string
	dataDir  string
	tempDir  bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts an embedded etcd with cfg and returns once it serves client
// requests. It fails when the address is taken, the data directory cannot be
// used, or the server is not ready before ctx is done (or within
// DefaultReadyTimeout); nothing is left running or on disk (for a temporary
// directory) when it fails. A port it picked itself (the peer port, or the
// client port for port 0) that another process takes in the meantime is
// picked again.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("devetcd: listen address %q: %v (want HOST:PORT, e.g. %s)", listen, err, DefaultListen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("devetcd: listen address %q: port must be a number from 0 to 65535", listen)
	}
	s := &Server{dataDir: cfg.DataDir}
	if s.dataDir == "" {
		d, err := os.MkdirTemp("", "coord-devetcd-")
		if err != nil {
			return nil, fmt.Errorf("devetcd: create a temporary data directory: %w", err)
		}
		s.dataDir, s.tempDir = d, true
	} else if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devetcd: data directory: %w", err)
	}
	const attempts = 3
	for i := 1; ; i++ {
		err := s.start(cfg, host, port)
		if err == nil {
			break
		}
		if i < attempts && errors.Is(err, errPickedPortTaken) {
			continue
		}
		_ = s.removeTemp()
		return nil, fmt.Errorf("devetcd: start etcd on %s (data dir %s): %w", listen, s.dataDir, err)
	}

	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(DefaultReadyTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-s.e.Server.ReadyNotify():
		return s, nil
	case err := <-s.e.Err():
		_ = s.Close()
		return nil, fmt.Errorf("devetcd: etcd on %s failed while starting: %w", listen, err)
	case <-ctx.Done():
		_ = s.Close()
		return nil, fmt.Errorf("devetcd: etcd on %s not ready: %w", listen, ctx.Err())
	case <-timeout:
		_ = s.Close()
		return nil, fmt.Errorf("devetcd: etcd on %s not ready after %s", listen, DefaultReadyTimeout)
	}
}

var errPickedPortTaken = errors.New("a port picked as free was taken meanwhile")

// start starts etcd once, picking the free ports it needs.
func (s *Server) start(cfg Config, host, port string) error {
	picked := map[string]bool{}
	if port == "0" {
		p, err := freePort(host)
		if err != nil {
			return fmt.Errorf("pick a free port on %s: %w", host, err)
		}
		port = strconv.Itoa(p)
		picked[net.JoinHostPort(host, port)] = true
	}
	// Clients are told to use a concrete address even when the server listens
	// on every interface.
	advHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		advHost = "127.0.0.1"
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return fmt.Errorf("pick a free peer port: %w", err)
	}
	peerAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))
	picked[peerAddr] = true
	s.endpoint = net.JoinHostPort(advHost, port)

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	if ec.Name == "" {
		ec.Name = "coord-dev"
	}
	ec.Dir = s.dataDir
	ec.ListenClientUrls = []url.URL{httpURL(net.JoinHostPort(host, port))}
	ec.AdvertiseClientUrls = []url.URL{httpURL(s.endpoint)}
	ec.ListenPeerUrls = []url.URL{httpURL(peerAddr)}
	ec.AdvertisePeerUrls = []url.URL{httpURL(peerAddr)}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.InitialClusterToken = "coord-dev"
	ec.ListenMetricsUrls = nil
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// A single member needs no long election timeout; a short one makes the
	// server ready in a fraction of a second.
	ec.TickMs = 50
	ec.ElectionMs = 500
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync

	e, err := embed.StartEtcd(ec)
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			for addr := range picked {
				if strings.Contains(err.Error(), addr) {
					return fmt.Errorf("%w: %w", errPickedPortTaken, err)
				}
			}
		}
		return err
	}
	s.e = e
	return nil
}

func httpURL(hostport string) url.URL { return url.URL{Scheme: "http", Host: hostport} }

// freePort returns a TCP port on host that was free a moment ago.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the coord backend URL of the server, "etcd://HOST:PORT".
func (s *Server) URL() string { return "etcd://" + s.endpoint }

// Endpoint is the client address HOST:PORT, for etcd's own client.
func (s *Server) Endpoint() string { return s.endpoint }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Err delivers an error if the server fails after it started (for example,
// its listener breaks). Close closes it.
func (s *Server) Err() <-chan error { return s.e.Err() }

// Close stops the server, waiting for its goroutines and listeners to finish,
// and removes the data directory if Start created it. Calling Close again
// returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.e != nil {
			s.e.Close()
		}
		s.closeErr = s.removeTemp()
	})
	return s.closeErr
}

func (s *Server) removeTemp() error {
	if !s.tempDir {
		return nil
	}
	if err := os.RemoveAll(s.dataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("devetcd: remove data directory: %w", err)
	}
	return nil
}
