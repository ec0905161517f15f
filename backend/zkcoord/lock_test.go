package zkcoord

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/lock"
	"github.com/go-zookeeper/zk"
)

// rawConn is a plain go-zookeeper connection to the server, for looking at
// what coord wrote.
func rawConn(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.Now().Add(10 * time.Second)
	for conn.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatalf("raw connection to %s: no session", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return conn
}

func contenderCount(t testing.TB, c *coord.Client, name string) int {
	t.Helper()
	n, err := c.Driver().(driver.Inspector).Contenders(ctxT(t, 5*time.Second), "lock", name)
	if err != nil {
		t.Fatalf("contenders %s: %v", name, err)
	}
	return n
}

// waitContenders waits until name has n contender nodes.
func waitContenders(t testing.TB, c *coord.Client, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := contenderCount(t, c, name); got != n; got = contenderCount(t, c, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d contenders, want %d", name, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLockOnServer(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)

	t.Run("FIFOHandoffWithIncreasingTokens", func(t *testing.T) {
		const n = 5
		name := "fifo"
		first, err := mutex(t, newSession(t, c), name).Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		type acq struct {
			i int
			g *lock.Guard
		}
		got := make(chan acq, n)
		for i := 1; i < n; i++ { // queue up in a known order
			m := mutex(t, newSession(t, c), name)
			go func() {
				g, err := m.Lock(ctxT(t, 20*time.Second))
				if err != nil {
					t.Error(err)
					return
				}
				got <- acq{i, g}
			}()
			waitContenders(t, c, name, i+1)
		}
		prev := first
		for want := 1; want < n; want++ {
			select {
			case a := <-got:
				t.Fatalf("contender %d acquired while %d still held", a.i, want-1)
			case <-time.After(50 * time.Millisecond):
			}
			if err := prev.Unlock(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if prev.Err() != coord.ErrNotHeld {
				t.Fatalf("released guard Err = %v", prev.Err())
			}
			a := <-got
			if a.i != want {
				t.Fatalf("contender %d acquired, want %d (FIFO)", a.i, want)
			}
			if a.g.Token() <= prev.Token() {
				t.Fatalf("token %d after %d", a.g.Token(), prev.Token())
			}
			prev = a.g
		}
		if err := prev.Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := prev.Unlock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
			t.Fatalf("second Unlock = %v, want ErrNotHeld", err)
		}
		waitContenders(t, c, name, 0)
	})

	t.Run("EachWaiterWatchesOnlyItsPredecessor", func(t *testing.T) {
		const n = 4
		name := "herd"
		sessions := make([]*coord.Session, n)
		guards := make(chan *lock.Guard, n)
		for i := range sessions {
			sessions[i] = newSession(t, c)
			m := mutex(t, sessions[i], name)
			go func() {
				g, err := m.Lock(ctxT(t, 20*time.Second))
				if err != nil {
					t.Error(err)
				}
				guards <- g
			}()
			waitContenders(t, c, name, i+1)
		}
		queue, _, err := rawConn(t, srv.Addr).Children("/coord/lock/" + name)
		if err != nil {
			t.Fatal(err)
		}
		queue = contenders(queue)
		// wchc lists, per session, the paths it watches. Waiter i must watch
		// exactly its predecessor's node: one wake-up per release, no herd.
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, err := local.FourLetter(ctxT(t, 5*time.Second), srv.Addr, "wchc")
			if err != nil {
				t.Fatal(err)
			}
			watches := parseWCHC(out)
			// The holder sets no watch at all: its session is the truth.
			ok := len(watches[sessions[0].ID()]) == 0
			for i := 1; i < n; i++ {
				want := "/coord/lock/" + name + "/" + queue[i-1]
				if got := watches[sessions[i].ID()]; len(got) != 1 || got[0] != want {
					ok = false
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("watches per session:\n%s\nqueue %v", out, queue)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for i := 0; i < n; i++ {
			g := <-guards
			if err := g.Unlock(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("TryLockAndCancelLeaveNoState", func(t *testing.T) {
		name := "try/cancel"
		g, err := mutex(t, newSession(t, c), name).Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		m := mutex(t, newSession(t, c), name)
		if _, err := m.TryLock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
			t.Fatalf("TryLock = %v, want ErrLocked", err)
		}
		if n := contenderCount(t, c, name); n != 1 {
			t.Fatalf("%d contenders after a refused TryLock", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock = %v, want DeadlineExceeded", err)
		}
		if n := contenderCount(t, c, name); n != 1 {
			t.Fatalf("%d contenders after a cancelled Lock", n)
		}
		if err := g.Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("TwoMutexesOfOneSessionExclude", func(t *testing.T) {
		s := newSession(t, c)
		g, err := mutex(t, s, "same").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mutex(t, s, "same").TryLock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrLocked) {
			t.Fatalf("TryLock by the same session = %v, want ErrLocked", err)
		}
		_ = g.Unlock(ctxT(t, 5*time.Second))
	})

	t.Run("ExpiredSessionLosesLockAndWaiterProceeds", func(t *testing.T) {
		name := "expire"
		sa, sb := newSession(t, c), newSession(t, c)
		ga, err := mutex(t, sa, name).Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *lock.Guard, 1)
		go func() {
			g, err := mutex(t, sb, name).Lock(ctxT(t, 20*time.Second))
			if err != nil {
				t.Error(err)
			}
			got <- g
		}()
		waitContenders(t, c, name, 2)
		if err := c.Driver().(driver.Expirer).ExpireSession(ctxT(t, 5*time.Second), sa.ID()); err != nil {
			t.Fatal(err)
		}
		waitDone(t, sa.Done(), 5*time.Second, "expired session")
		if !errors.Is(sa.Err(), coord.ErrSessionExpired) {
			t.Fatalf("session Err = %v", sa.Err())
		}
		waitDone(t, ga.Done(), time.Second, "lost guard")
		if !errors.Is(ga.Err(), coord.ErrLockLost) || !errors.Is(ga.Err(), coord.ErrSessionExpired) {
			t.Fatalf("guard Err = %v", ga.Err())
		}
		gb := <-got
		if gb == nil || gb.Token() <= ga.Token() {
			t.Fatalf("waiter guard %v after token %d", gb, ga.Token())
		}
		if err := ga.Unlock(ctxT(t, 5*time.Second)); !errors.Is(err, coord.ErrNotHeld) {
			t.Fatalf("Unlock of a lost lock = %v", err)
		}
		if _, err := sb.Client().NewSession(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ClosedSessionReleasesAtOnce", func(t *testing.T) {
		name := "close"
		sa, sb := newSession(t, c), newSession(t, c)
		ga, err := mutex(t, sa, name).Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			if _, err := mutex(t, sb, name).Lock(ctxT(t, 20*time.Second)); err != nil {
				t.Error(err)
			}
			got <- time.Now()
		}()
		waitContenders(t, c, name, 2)
		start := time.Now()
		if err := sa.Close(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if d := (<-got).Sub(start); d > testTTL/2 {
			t.Fatalf("waiter acquired %s after Close; want well under the TTL", d)
		}
		if !errors.Is(ga.Err(), coord.ErrLockLost) || !errors.Is(ga.Err(), coord.ErrSessionClosed) {
			t.Fatalf("guard Err = %v", ga.Err())
		}
		if !errors.Is(sa.Err(), coord.ErrSessionClosed) {
			t.Fatalf("session Err = %v", sa.Err())
		}
	})

	t.Run("NodeDeletedByHandIsNoticedAtUnlock", func(t *testing.T) {
		// Outside the contract (an operator breaking the lock): the holder
		// sets no watch on its node, so it learns of the deletion at Unlock;
		// the waiter proceeds; the session lives on.
		s := newSession(t, c)
		g, err := mutex(t, s, "vandal").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *lock.Guard, 1)
		m2 := mutex(t, newSession(t, c), "vandal")
		go func() {
			g2, err := m2.Lock(ctxT(t, 10*time.Second))
			if err != nil {
				t.Error(err)
			}
			got <- g2
		}()
		waitContenders(t, c, "vandal", 2)
		raw := rawConn(t, srv.Addr)
		children, _, err := raw.Children("/coord/lock/vandal")
		if err != nil || len(children) != 2 {
			t.Fatalf("children %v %v", children, err)
		}
		if err := raw.Delete("/coord/lock/vandal/"+contenders(children)[0], -1); err != nil {
			t.Fatal(err)
		}
		var g2 *lock.Guard
		select {
		case g2 = <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("waiter did not acquire after the holder's node was deleted")
		}
		if g2 == nil {
			return
		}
		if err := g.Err(); err != nil {
			t.Fatalf("guard Err = %v before Unlock: a deleted node is only noticed at Unlock", err)
		}
		err = g.Unlock(ctxT(t, 5*time.Second))
		if !errors.Is(err, coord.ErrNotHeld) || errors.Is(err, coord.ErrSessionExpired) {
			t.Fatalf("Unlock of a deleted node = %v, want ErrNotHeld (node gone)", err)
		}
		waitDone(t, g.Done(), time.Second, "guard after Unlock found its node gone")
		if !errors.Is(g.Err(), coord.ErrLockLost) {
			t.Fatalf("guard Err = %v", g.Err())
		}
		if s.Err() != nil {
			t.Fatalf("session ended: %v", s.Err())
		}
		if err := g2.Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ChrootIsolatesAndIsCreated", func(t *testing.T) {
		c1, c2 := openClient(t, srv.URL+"/iso/one"), openClient(t, srv.URL+"/iso/two")
		g1, err := mutex(t, newSession(t, c1), "x").TryLock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		g2, err := mutex(t, newSession(t, c2), "x").TryLock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatalf("same name under another chroot: %v", err)
		}
		raw := rawConn(t, srv.Addr)
		for _, p := range []string{"/iso/one/coord/lock/x", "/iso/two/coord/lock/x"} {
			if ch, _, err := raw.Children(p); err != nil || len(ch) != 1 {
				t.Fatalf("%s: %v %v", p, ch, err)
			}
		}
		if n := contenderCount(t, c, "x"); n != 0 {
			t.Fatalf("the un-chrooted client sees %d contenders", n)
		}
		_ = g1.Unlock(ctxT(t, 5*time.Second))
		_ = g2.Unlock(ctxT(t, 5*time.Second))
	})

	t.Run("DigestAuthProtectsNodes", func(t *testing.T) {
		alice := openClient(t, "zk://alice:Al1ceSecret@"+srv.Addr+"/secure")
		g, err := mutex(t, newSession(t, alice), "x").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = g.Unlock(ctxT(t, 5*time.Second)) }()
		raw := rawConn(t, srv.Addr)
		if _, _, err := raw.Children("/secure/coord/lock/x"); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("unauthenticated read = %v, want ErrNoAuth", err)
		}
		_, err = coord.Open(ctxT(t, 5*time.Second), "zk://mallory:M4lloryPW@"+srv.Addr+"/secure")
		if err == nil || strings.Contains(err.Error(), "M4lloryPW") {
			t.Fatalf("open with other credentials = %v; want an error without the password", err)
		}
	})

	t.Run("ProtectedCreateIsFoundByGUID", func(t *testing.T) {
		cl := c.Driver().(*client)
		ds, err := cl.NewSession(ctxT(t, 5*time.Second), driver.SessionConfig{TTL: testTTL})
		if err != nil {
			t.Fatal(err)
		}
		s := ds.(*session)
		defer func() { _ = s.Close(context.Background()) }()
		dir := cl.recipePath("lock", "guid")
		if err := ensurePath(s.conn, dir, cl.acl); err != nil {
			t.Fatal(err)
		}
		const guid = "0123456789abcdef0123456789abcdef"
		// As if the create's answer had been lost with the connection.
		p, err := s.conn.Create(dir+"/"+protectedPrefix+guid+lockMarker, nil, zk.FlagEphemeral|zk.FlagSequence, cl.acl)
		if err != nil {
			t.Fatal(err)
		}
		_, st, _ := s.conn.Exists(p)
		got, zxid, err := s.findGUID(ctxT(t, 5*time.Second), dir, guid)
		if err != nil || got != p || zxid != st.Czxid {
			t.Fatalf("findGUID = %q %d %v, want %q %d", got, zxid, err, p, st.Czxid)
		}
		if got, _, err := s.findGUID(ctxT(t, 5*time.Second), dir, "ffff"+guid[4:]); err != nil || got != "" {
			t.Fatalf("findGUID of an unknown GUID = %q %v", got, err)
		}
		if err := s.deleteGUID(ctxT(t, 5*time.Second), dir, guid); err != nil {
			t.Fatal(err)
		}
		if n := contenderCount(t, c, "guid"); n != 0 {
			t.Fatalf("%d contenders after deleteGUID", n)
		}
	})

	t.Run("TokenSurvivesParentRecreation", func(t *testing.T) {
		s := newSession(t, c)
		g1, err := mutex(t, s, "reborn").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := g1.Unlock(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		raw := rawConn(t, srv.Addr)
		if err := raw.Delete("/coord/lock/reborn", -1); err != nil {
			t.Fatal(err)
		}
		g2, err := mutex(t, s, "reborn").Lock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if g2.Token() <= g1.Token() {
			t.Fatalf("token %d after %d across a recreated parent", g2.Token(), g1.Token())
		}
		_ = g2.Unlock(ctxT(t, 5*time.Second))
	})
}

// parseWCHC parses the wchc four-letter answer: a session ID line followed by
// tab-indented watched paths.
func parseWCHC(out string) map[string][]string {
	m := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "0x"):
			cur = strings.TrimSpace(line)
		case strings.HasPrefix(line, "\t") && cur != "":
			m[cur] = append(m[cur], strings.TrimSpace(line))
		}
	}
	return m
}
