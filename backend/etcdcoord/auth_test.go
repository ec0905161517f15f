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
