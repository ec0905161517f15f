package etcdcoord

import (
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/lock"
)

// TestOpenWithCredentials enables etcd authentication and checks that the
// URL's user:pass reaches the server, and that a wrong password fails
// clearly without appearing in the error.
func TestOpenWithCredentials(t *testing.T) {
	e := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testCtx(t, 10*time.Second)
	if _, err := cli.RoleAdd(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserAdd(ctx, "root", "Corr3ct-Horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	host := strings.TrimPrefix(e.URL, "etcd://")
	c := openClient(t, "etcd://root:Corr3ct-Horse@"+host+"/secured")
	s := newSession(t, c, 5*time.Second)
	m, _ := lock.NewMutex(s, "authed")
	g, err := m.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("lock with credentials: %v", err)
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	_, err = coord.Open(testCtx(t, 10*time.Second), "etcd://root:Wr0ng-Battery@"+host, coord.WithDialTimeout(3*time.Second))
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "Wr0ng-Battery") || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Logf("wrong password: %v", err)
	_, err = coord.Open(testCtx(t, 10*time.Second), "etcd://"+host, coord.WithDialTimeout(3*time.Second))
	if err == nil {
		t.Fatal("Open without credentials on an auth-enabled server succeeded")
	}
	if errors.Is(err, coord.ErrUnavailable) || !strings.Contains(err.Error(), "requires authentication") {
		t.Fatalf("no credentials: %v", err)
	}
	t.Logf("no credentials: %v", err)
}

// TestSessionWithoutMarkerPermission runs a user who may write lock keys but
// not the session marker: sessions still work, and a revoked lease is then
// reported by the keep-alive (within about a third of the TTL) instead of
// the marker watch.
func TestSessionWithoutMarkerPermission(t *testing.T) {
	e := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testCtx(t, 10*time.Second)
	root := rootKey("", "limited")
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "R00t-pass"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "locker"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "locker", root+"lock/", clientv3.GetPrefixRangeEnd(root+"lock/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "locker", root, "", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "locker", "L0cker-pass"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "locker", "locker"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	host := strings.TrimPrefix(e.URL, "etcd://")
	c, err := coord.Open(testCtx(t, 10*time.Second), "etcd://locker:L0cker-pass@"+host, coord.WithNamespace("limited"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ttl = 3 * time.Second
	s := newSession(t, c, ttl)
	m, _ := lock.NewMutex(s, "limited")
	g, err := m.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("lock without marker permission: %v", err)
	}
	admin, err := coord.Open(testCtx(t, 10*time.Second), "etcd://root:R00t-pass@"+host, coord.WithNamespace("limited"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if n, err := driverOf(t, admin).cli.Get(testCtx(t, 5*time.Second), root+"session/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || n.Count != 0 {
		t.Fatalf("marker keys: %v, %v; want none (not permitted)", n, err)
	}
	start := time.Now()
	if err := driverOf(t, admin).ExpireSession(testCtx(t, 5*time.Second), s.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Done():
	case <-time.After(ttl):
		t.Fatalf("guard not done within the TTL (%v) after the lease was revoked", ttl)
	}
	t.Logf("keep-alive reported the revoked lease after %v (TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
	if !errors.Is(g.Err(), coord.ErrLockLost) || !errors.Is(g.Err(), coord.ErrSessionExpired) {
		t.Fatalf("guard Err() = %v, want ErrLockLost and ErrSessionExpired", g.Err())
	}
}
