package zkcoord

import (
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// userConn is an application's own connection, dialled through a tracker so
// the test can learn its session password and kill the session.
func userConn(t *testing.T, addr string) (*zk.Conn, <-chan zk.Event, *tracker) {
	t.Helper()
	tr := newTracker(nil)
	conn, events, err := zk.Connect([]string{addr}, testTTL, zk.WithDialer(tr.dial), zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.Now().Add(10 * time.Second)
	for conn.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatal("user connection: no session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return conn, events, tr
}

func TestNewOnUserConnection(t *testing.T) {
	srv := local.StartZooKeeper(t)
	for _, withEvents := range []bool{true, false} {
		name := map[bool]string{true: "EventChannel", false: "Sampling"}[withEvents]
		t.Run(name, func(t *testing.T) {
			conn, events, tr := userConn(t, srv.Addr)
			if !withEvents {
				go func(ch <-chan zk.Event) { // the application keeps its channel
					for range ch {
					}
				}(events)
				events = nil
			}
			c, err := New(conn, events, coord.WithTTL(testTTL), coord.WithNamespace("shared"))
			if err != nil {
				t.Fatal(err)
			}
			s1, s2 := newSession(t, c), newSession(t, c)
			if s1.ID() == s2.ID() {
				t.Fatalf("two sessions with ID %s", s1.ID())
			}
			g1, err := mutex(t, s1, "x").Lock(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mutex(t, s2, "x").TryLock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
				t.Fatalf("TryLock from a second session on the same connection = %v", err)
			}
			// Closing a session deletes its nodes, though the ZooKeeper session lives on.
			if err := s1.Close(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(g1.Err(), coord.ErrLockLost) {
				t.Fatalf("guard Err after session Close = %v", g1.Err())
			}
			if n := contenderCount(t, c, "x"); n != 0 {
				t.Fatalf("%d contenders after the holder's session closed", n)
			}
			g2, err := mutex(t, s2, "x").TryLock(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if g2.Token() <= g1.Token() {
				t.Fatalf("token %d after %d", g2.Token(), g1.Token())
			}
			if err := c.Driver().(driver.Expirer).ExpireSession(ctxT(t, time.Second), s2.ID()); !errors.Is(err, coord.ErrUnsupported) {
				t.Fatalf("ExpireSession on a shared connection = %v, want ErrUnsupported", err)
			}

			// Losing the ZooKeeper session loses every coord session on it.
			sid, passwd, timeout := tr.session()
			if err := closeRemote(ctxT(t, 5*time.Second), srv.Addr, nil, sid, passwd, timeout); err != nil {
				t.Fatal(err)
			}
			waitDone(t, s2.Done(), 5*time.Second, "session on the expired connection")
			if !errors.Is(s2.Err(), coord.ErrSessionExpired) || !errors.Is(g2.Err(), coord.ErrSessionExpired) {
				t.Fatalf("session Err %v, guard Err %v", s2.Err(), g2.Err())
			}
			// go-zookeeper opens a new session; new coord sessions use it.
			s3 := newSession(t, c)
			if _, err := mutex(t, s3, "x").TryLock(ctxT(t, 5*time.Second)); err != nil {
				t.Fatalf("lock on the new ZooKeeper session: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if ok, _, err := conn.Exists("/shared"); err != nil || !ok {
				t.Fatalf("the user's connection after Client.Close: %v %v", ok, err)
			}
		})
	}
}
