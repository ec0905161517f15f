package rediscoord_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/backend/rediscoord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/redis/go-redis/v9"
)

func TestOpenUnreachableFailsFastWithoutSecrets(t *testing.T) {
	// A port nobody listens on (connection refused), and a listener that
	// accepts but never answers (the dial timeout must bound the PING).
	refused := net.JoinHostPort("127.0.0.1", strconv.Itoa(local.FreePort(t)))
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		_ = silent.Close()
		for c := range accepted {
			_ = c.Close()
		}
	}()
	for _, addr := range []string{refused, silent.Addr().String()} {
		start := time.Now()
		_, err := coord.Open(context.Background(), "redis://bob:hunter2@"+addr+"/1", coord.WithDialTimeout(700*time.Millisecond))
		took := time.Since(start)
		if !errors.Is(err, coord.ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", addr, err)
		}
		if took > 1500*time.Millisecond {
			t.Fatalf("%s: Open took %s with a 700ms dial timeout", addr, took)
		}
		if msg := err.Error(); !strings.Contains(msg, addr) || strings.Contains(msg, "hunter2") {
			t.Fatalf("%s: error %q must name the address and hide the password", addr, msg)
		}
	}
}

func TestOpenRedlockIsUnsupported(t *testing.T) {
	_, err := coord.Open(context.Background(), "redis://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3?mode=redlock")
	if !errors.Is(err, coord.ErrUnsupported) || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("err = %v, want ErrUnsupported saying redlock is not supported yet", err)
	}
	_, err = coord.Open(context.Background(), "redis://127.0.0.1:1,127.0.0.1:2")
	if !errors.Is(err, coord.ErrInvalidURL) {
		t.Fatalf("several hosts without a mode: err = %v, want ErrInvalidURL", err)
	}
}

func TestOpenUsesDatabaseAndNamespace(t *testing.T) {
	srv := local.StartRedis(t)
	c := openURL(t, srv.URL+"/5", coord.WithNamespace("dbtest"))
	s := newSession(t, c, 5*time.Second)
	g := mustLock(t, newMutex(t, s, "reports/daily"))
	defer g.Unlock(context.Background())
	raw5 := redis.NewClient(&redis.Options{Addr: srv.Addr, DB: 5})
	defer raw5.Close()
	raw0 := rawClient(t, srv.Addr)
	ctx := ctxFor(t, 5*time.Second)
	if n := raw5.Exists(ctx, "dbtest:lock:{reports/daily}", "dbtest:session:"+s.ID()).Val(); n != 2 {
		t.Fatalf("DB 5 has %d of the lock and session keys, want 2", n)
	}
	if n := raw0.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("DB 0 has %d keys, want none", n)
	}
	if tok, _ := raw5.Get(ctx, "dbtest:lock:{reports/daily}:fence").Uint64(); tok != uint64(g.Token()) {
		t.Fatalf("fence counter %d, token %d", tok, g.Token())
	}
}

func TestNewKeepsTheCallersClient(t *testing.T) {
	srv := local.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	c, err := rediscoord.New(rdb, coord.WithNamespace("typed"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c, 2*time.Second)
	g := mustLock(t, newMutex(t, s, "x"))
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctxFor(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("the caller's client no longer works after Client.Close: %v", err)
	}
	if c.Backend() != "redis" || !strings.Contains(c.String(), srv.Addr) {
		t.Fatalf("Backend %q, String %q", c.Backend(), c.String())
	}
}

func TestNewRefusesClusterClients(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	if _, err := rediscoord.New(cc); !errors.Is(err, coord.ErrUnsupported) {
		t.Fatalf("New(cluster client): err = %v, want ErrUnsupported", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	if _, err := rediscoord.New(rdb, coord.WithNamespace("bad ns")); !errors.Is(err, coord.ErrInvalidName) {
		t.Fatalf("New with an invalid namespace: err = %v, want ErrInvalidName", err)
	}
}
