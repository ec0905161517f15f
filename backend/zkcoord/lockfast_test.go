package zkcoord

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/coordkit/coord/conformance/local"
)

// TestCreateContenderReportsAlone checks the uncontended fast path of Lock:
// the parent's stat returned by the create transaction must count the new
// node, so that "alone" (the lock is held with no listing) is reported only
// when no other child exists: not with an older contender, a newer one, or
// a nested lock's node under the same directory.
func TestCreateContenderReportsAlone(t *testing.T) {
	srv := local.StartZooKeeper(t)
	c := openClient(t, srv.URL)
	s := newSession(t, c).Driver().(*session)
	dir := s.c.recipePath("lock", "fast")
	create := func() (string, bool) {
		t.Helper()
		var g [16]byte
		_, _ = rand.Read(g[:])
		node, _, alone, err := s.createContender(ctxT(t, 5*time.Second), dir, hex.EncodeToString(g[:]))
		if err != nil {
			t.Fatal(err)
		}
		return node, alone
	}
	del := func(p string) {
		t.Helper()
		if err := s.deleteNode(ctxT(t, 5*time.Second), p); err != nil {
			t.Fatal(err)
		}
	}
	n1, alone := create()
	if !alone {
		t.Fatal("first contender of an empty directory not reported alone")
	}
	n2, alone := create()
	if alone {
		t.Fatal("second contender reported alone while the first exists")
	}
	del(n1)
	n3, alone := create()
	if alone {
		t.Fatal("contender reported alone while an older one exists")
	}
	del(n2)
	del(n3)
	raw := rawConn(t, srv.Addr)
	if err := ensurePath(raw, dir+"/nested", s.c.acl); err != nil {
		t.Fatal(err)
	}
	n4, alone := create()
	if alone {
		t.Fatal("contender reported alone next to a nested lock's node")
	}
	del(n4)
	if err := raw.Delete(dir+"/nested", -1); err != nil {
		t.Fatal(err)
	}
	n5, alone := create()
	if !alone {
		t.Fatal("contender of an emptied directory not reported alone")
	}
	del(n5)
}
