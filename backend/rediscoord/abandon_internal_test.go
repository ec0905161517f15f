package rediscoord

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
)

// A Lock call whose clean-up could not reach Redis is cleaned up by the
// session's next renewal, and the waiter behind it is woken.
func TestRenewalDropsAbandonedEntries(t *testing.T) {
	srv := local.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	c, err := newClient(rdb, false, coord.ResolveOptions(coord.WithNamespace("ab")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ttl = 600 * time.Millisecond
	ds, err := c.NewSession(ctx, driver.SessionConfig{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close(ctx)
	s := ds.(*session)
	// The abandoned call is at the head of a free lock's line, as if it had
	// consumed its wake-up and then failed to remove itself.
	base := c.lockBase("l")
	wid := randomID(8)
	if err := rdb.RPush(ctx, base+":waiters", s.id+":"+wid).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, s.owned, "w "+wid+" "+base).Err(); err != nil {
		t.Fatal(err)
	}
	ds2, err := c.NewSession(ctx, driver.SessionConfig{TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ds2.Close(ctx)
	got := make(chan error, 1)
	go func() {
		h, err := c.Lock(ctx, ds2, "l", driver.LockOptions{})
		if err == nil {
			err = h.Release(ctx)
		}
		got <- err
	}()
	for n := 0; n != 2; n, _ = c.Contenders(ctx, "lock", "l") {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("the waiter behind the abandoned entry did not wait: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.abandon(wid, base)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ttl):
		t.Fatal("the renewal did not drop the abandoned entry and wake the next waiter")
	}
	if n, _ := c.Contenders(ctx, "lock", "l"); n != 0 {
		t.Fatalf("%d contenders left", n)
	}
	if m, _ := rdb.SIsMember(ctx, s.owned, "w "+wid+" "+base).Result(); m {
		t.Fatal("owned set still lists the abandoned entry")
	}
}
