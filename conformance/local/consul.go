package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ConsulVersion is the Consul release that tools/consulsrv builds.
const ConsulVersion = "v1.16.3"

// Consul is a single-node Consul agent in -dev mode (a server that elects
// itself leader; Raft state in memory, so no fsync) started by StartConsul.
type Consul struct {
	// URL is the coord backend URL, "consul://127.0.0.1:PORT" (consuls:// of
	// the HTTPS port when started with TLS).
	URL string
	// Addr is the agent's plain HTTP address, "127.0.0.1:PORT".
	Addr string
	// Process is the agent process, for fault injection (Kill, Pause).
	Process *Process
}

// ConsulBinary finds a Consul agent binary: $COORD_CONSUL_BIN, then `consul`
// on PATH, then consulsrv-v1.16.3 (built from tools/consulsrv by
// scripts/build-consul.sh) in $XDG_CACHE_HOME/coord or $HOME/.cache/coord.
func ConsulBinary() (string, error) {
	if p := os.Getenv("COORD_CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("COORD_CONSUL_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	var dirs []string
	if d, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, d)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache"))
	}
	var tried []string
	for _, d := range dirs {
		p := filepath.Join(d, "coord", "consulsrv-"+ConsulVersion)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("no COORD_CONSUL_BIN, no consul on PATH, none of %v", tried)
}

// ConsulOptions configures StartConsulWith.
type ConsulOptions struct {
	// HCL is extra agent configuration, one -hcl argument each (e.g. an acl
	// stanza).
	HCL []string
	// TLS, when set, makes the agent also serve HTTPS with these PEM files
	// (requiring client certificates signed by CAFile); URL is then the
	// consuls:// URL of the HTTPS port, without ?ca=&cert=&key=.
	TLS *ConsulTLS
}

// ConsulTLS names the PEM files of a TLS-serving agent.
type ConsulTLS struct{ CAFile, CertFile, KeyFile string }

// StartConsul starts a Consul agent in -dev mode on free loopback ports (HTTP,
// server RPC and Serf LAN; DNS, gRPC and Serf WAN disabled) with a temporary
// data directory, waits until it has elected itself leader, and stops it when
// t ends. Without a binary it calls Missing.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	return StartConsulWith(t, ConsulOptions{})
}

// StartConsulWith is StartConsul with extra configuration.
func StartConsulWith(t testing.TB, o ConsulOptions) *Consul {
	t.Helper()
	bin, err := ConsulBinary()
	if err != nil {
		Missing(t, "Consul agent", "run scripts/build-consul.sh ("+err.Error()+")")
		return nil
	}
	httpPort := FreePort(t)
	serverPort := FreePort(t)
	serfPort := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	args := []string{
		"agent", "-dev",
		"-node", "coord-test-" + strconv.Itoa(httpPort),
		"-client", "127.0.0.1", "-bind", "127.0.0.1",
		"-data-dir", TempDir(t, "coord-consul-"),
		"-http-port", strconv.Itoa(httpPort),
		"-server-port", strconv.Itoa(serverPort),
		"-serf-lan-port", strconv.Itoa(serfPort),
		"-serf-wan-port", "-1", "-dns-port", "-1",
		"-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-hcl", "disable_update_check = true",
		"-log-level", "warn",
	}
	for _, h := range o.HCL {
		args = append(args, "-hcl", h)
	}
	url := "consul://" + addr
	if o.TLS != nil {
		httpsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		_, httpsPort, _ := net.SplitHostPort(httpsAddr)
		args = append(args, "-https-port", httpsPort, "-hcl", fmt.Sprintf(
			"tls { defaults { ca_file = %q cert_file = %q key_file = %q } https { verify_incoming = true } }",
			o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile))
		url = "consuls://" + httpsAddr
	}
	p := Start(t, bin, args, []string{"CHECKPOINT_DISABLE=1"}, consulLeaderReady(addr), 60*time.Second)
	return &Consul{URL: url, Addr: addr, Process: p}
}

// consulLeaderReady succeeds once GET /v1/status/leader names a leader.
func consulLeaderReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status/leader", nil)
		if err != nil {
			return err
		}
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status/leader: HTTP %d", resp.StatusCode)
		}
		var leader string
		if err := json.Unmarshal(body, &leader); err != nil {
			return fmt.Errorf("status/leader: %w", err)
		}
		if leader == "" {
			return errors.New("no leader yet")
		}
		return nil
	}
}
