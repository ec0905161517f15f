package devetcd_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/coordkit/coord/internal/devetcd"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Process-wide pools started once by grpc and the etcd client/server
		// libraries on first use; they are not per-server goroutines.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func start(t *testing.T, cfg devetcd.Config) *devetcd.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := devetcd.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(t *testing.T, s *devetcd.Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func health(t *testing.T, endpoint string) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + endpoint + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	defer resp.Body.Close()
	var h struct{ Health string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("decode /health: %v", err)
	}
	hc.CloseIdleConnections()
	return h.Health
}

func TestStartServesAndCloseRemovesTempDir(t *testing.T) {
	s := start(t, devetcd.Config{Listen: "127.0.0.1:0"})
	if !strings.HasPrefix(s.URL(), "etcd://127.0.0.1:") || s.URL() != "etcd://"+s.Endpoint() {
		t.Fatalf("URL %q, Endpoint %q", s.URL(), s.Endpoint())
	}
	if _, port, _ := net.SplitHostPort(s.Endpoint()); port == "0" {
		t.Fatalf("port 0 was not replaced: %s", s.Endpoint())
	}
	if got := health(t, s.Endpoint()); got != "true" {
		t.Fatalf("health = %q, want true", got)
	}
	c := client(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	r, err := c.Get(ctx, "k")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Fatalf("get: %v %v", r, err)
	}
	_ = c.Close()

	dir := s.DataDir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir while running: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp data dir %s still there after Close (err %v)", dir, err)
	}
	var d net.Dialer
	dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
	defer dcancel()
	if conn, err := d.DialContext(dctx, "tcp", s.Endpoint()); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Close", s.Endpoint())
	}
}

func TestDataDirKeptAndReopened(t *testing.T) {
	dir := t.TempDir()
	s := start(t, devetcd.Config{Listen: "127.0.0.1:0", DataDir: dir})
	c := client(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "survives", "yes"); err != nil {
		t.Fatalf("put: %v", err)
	}
	_ = c.Close()
	endpoint := s.Endpoint()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir + "/member"); err != nil {
		t.Fatalf("given data dir was not kept: %v", err)
	}

	s2 := start(t, devetcd.Config{Listen: endpoint, DataDir: dir})
	c2 := client(t, s2)
	r, err := c2.Get(ctx, "survives")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "yes" {
		t.Fatalf("get after restart: %v %v", r, err)
	}
}

func TestStartFailsOnTakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := devetcd.Start(ctx, devetcd.Config{Listen: l.Addr().String()})
	if err == nil {
		_ = s.Close()
		t.Fatalf("Start on a taken address %s succeeded", l.Addr())
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("error does not name the address: %v", err)
	}
}

func TestStartRejectsBadListen(t *testing.T) {
	for _, listen := range []string{"nope", "127.0.0.1:99999", "127.0.0.1:x"} {
		s, err := devetcd.Start(context.Background(), devetcd.Config{Listen: listen})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Start(%q) succeeded", listen)
		}
	}
}
