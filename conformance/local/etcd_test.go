package local_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/coordkit/coord/conformance/local"
)

func TestStartEtcdHealthyAndRestart(t *testing.T) {
	// Registered first, so it runs after the server's own cleanup.
	t.Cleanup(func() {
		goleak.VerifyNone(t, goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"))
	})
	e := local.StartEtcd(t)
	if e.URL != "etcd://"+e.Endpoint || !strings.HasPrefix(e.Endpoint, "127.0.0.1:") || e.DataDir == "" {
		t.Fatalf("bad Etcd fields: %+v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := local.EtcdHealthy(e.Endpoint)(ctx); err != nil {
		t.Fatalf("health after start: %v", err)
	}

	put := func(k, v string) {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		defer c.Close()
		if _, err := c.Put(ctx, k, v); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	put("before-restart", "1")

	e.Process.Kill()
	if err := local.EtcdHealthy(e.Endpoint)(ctx); err == nil {
		t.Fatalf("health check passes after Kill")
	}
	e.Restart(t)
	if err := local.EtcdHealthy(e.Endpoint)(ctx); err != nil {
		t.Fatalf("health after restart: %v", err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close()
	r, err := c.Get(ctx, "before-restart")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "1" {
		t.Fatalf("data lost across restart: %v %v", r, err)
	}
}
