package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Etcd is a single-member etcd server run as a `coordctl dev` process (an
// embedded etcd built from the pinned go.etcd.io/etcd/server module, so no
// etcd binary is needed).
type Etcd struct {
	// URL is the coord backend URL, "etcd://127.0.0.1:PORT".
	URL string
	// Endpoint is the client address "127.0.0.1:PORT", for clientv3.
	Endpoint string
	// DataDir is the server's data directory, kept across Restart.
	DataDir string
	// Process is the running coordctl dev process.
	Process *Process
}

// etcdReadyTimeout bounds how long StartEtcd waits for /health.
const etcdReadyTimeout = 60 * time.Second

// StartEtcd builds coordctl (once per test binary), starts `coordctl dev` on a
// free loopback port with a temporary data directory, and returns once its
// /health endpoint reports healthy. The server is stopped when t ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	port := FreePort(t)
	endpoint := "127.0.0.1:" + strconv.Itoa(port)
	e := &Etcd{
		URL:      "etcd://" + endpoint,
		Endpoint: endpoint,
		DataDir:  TempDir(t, "coord-etcd-"),
	}
	e.start(t)
	return e
}

// Restart starts the server again on the same port and data directory, after
// its process was killed or stopped (Process.Kill, Process.Stop). It stops a
// still-running process first.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	if e.Process != nil {
		e.Process.Stop()
	}
	e.start(t)
}

func (e *Etcd) start(t testing.TB) {
	t.Helper()
	bin := Coordctl(t)
	args := []string{"dev", "--listen", e.Endpoint, "--data-dir", e.DataDir}
	e.Process = Start(t, bin, args, nil, EtcdHealthy(e.Endpoint), etcdReadyTimeout)
}

// EtcdHealthy returns a ready check that succeeds once GET
// http://endpoint/health answers {"health":"true"}.
func EtcdHealthy(endpoint string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+"/health", nil)
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
		var h struct {
			Health string `json:"health"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			return fmt.Errorf("etcd /health: %s: %w", body, err)
		}
		if resp.StatusCode != http.StatusOK || h.Health != "true" {
			return fmt.Errorf("etcd /health: status %d: %s", resp.StatusCode, body)
		}
		return nil
	}
}
