package bench

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/coordkit/coord"
	_ "github.com/coordkit/coord/backend/all"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
	"github.com/go-zookeeper/zk"
	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

var results Recorder

func TestMain(m *testing.M) {
	code := m.Run()
	var b strings.Builder
	results.Table(&b)
	if b.Len() > 0 {
		fmt.Print("\n" + b.String())
		if p := os.Getenv("BENCH_TABLE"); p != "" {
			_ = os.WriteFile(p, []byte(b.String()), 0o644)
		}
	}
	os.Exit(code)
}

var seq atomic.Int64

func uniq(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// server starts one backend and says how to build a peer locker on it.
type server struct {
	name, url string
	addr      string // host:port of the server, for raw clients
	peer      string
	peerNote  string
	newPeer   func(b *testing.B, name string) Locker
}

// BenchmarkLock measures an uncontended lock+unlock cycle and a contended
// handoff among 4 clients (each its own connection and session), for coord
// and for each backend's peer library, on the same server.
func BenchmarkLock(b *testing.B) {
	for _, be := range []struct {
		name  string
		start func(b *testing.B) server
	}{{"etcd", startEtcd}, {"zookeeper", startZooKeeper}, {"redis", startRedis}, {"consul", startConsul}} {
		b.Run(be.name, func(b *testing.B) {
			srv := be.start(b)
			for _, c := range []struct {
				name    string
				clients int
			}{{"uncontended", 1}, {"contended-4", 4}} {
				b.Run(c.name+"/coord", func(b *testing.B) {
					name := uniq("bench-")
					run(b, srv.name, c.name, "coord", "", c.clients, func() Locker { return newCoordLocker(b, srv.url, name) })
				})
				b.Run(c.name+"/"+srv.peer, func(b *testing.B) {
					name := uniq("bench-")
					run(b, srv.name, c.name, srv.peer, srv.peerNote, c.clients, func() Locker { return srv.newPeer(b, name) })
				})
			}
		})
	}
}

func run(b *testing.B, backend, kase, impl, note string, clients int, mk func() Locker) {
	lockers := make([]Locker, clients)
	for i := range lockers {
		lockers[i] = mk()
	}
	defer func() {
		for _, l := range lockers {
			_ = l.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Warm up connections and server-side state outside the timer.
	if _, err := Cycles(ctx, lockers, clients); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	waits, err := Cycles(ctx, lockers, b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	p50, p99 := Percentile(waits, 50), Percentile(waits, 99)
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-wait-ns")
	b.ReportMetric(float64(p99.Nanoseconds()), "p99-wait-ns")
	results.Record(Result{Backend: backend, Case: kase, Impl: impl, Note: note,
		NsPerOp: float64(elapsed.Nanoseconds()) / float64(b.N), P50: p50, P99: p99})
}

// coord

type coordLocker struct {
	c *coord.Client
	s *coord.Session
	m *lock.Mutex
}

func newCoordLocker(b *testing.B, url, name string) Locker {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, url, coord.WithNamespace("bench"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := c.NewSession(ctx)
	if err != nil {
		b.Fatal(err)
	}
	m, err := lock.NewMutex(s, name)
	if err != nil {
		b.Fatal(err)
	}
	return &coordLocker{c: c, s: s, m: m}
}

func (l *coordLocker) Lock(ctx context.Context) (func(context.Context) error, error) {
	g, err := l.m.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return g.Unlock, nil
}

func (l *coordLocker) Close() error {
	_ = l.s.Close(context.Background())
	return l.c.Close()
}

// etcd: concurrency.Mutex

func startEtcd(b *testing.B) server {
	e := local.StartEtcd(b)
	return server{name: "etcd", url: e.URL, addr: e.Endpoint, peer: "concurrency.Mutex", newPeer: func(b *testing.B, name string) Locker {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			b.Fatal(err)
		}
		return &etcdPeer{cli: cli, s: s, m: concurrency.NewMutex(s, "/peer/"+name)}
	}}
}

type etcdPeer struct {
	cli *clientv3.Client
	s   *concurrency.Session
	m   *concurrency.Mutex
}

func (p *etcdPeer) Lock(ctx context.Context) (func(context.Context) error, error) {
	if err := p.m.Lock(ctx); err != nil {
		return nil, err
	}
	return p.m.Unlock, nil
}

func (p *etcdPeer) Close() error {
	_ = p.s.Close()
	return p.cli.Close()
}

// ZooKeeper: go-zookeeper's zk.Lock

func startZooKeeper(b *testing.B) server {
	z := local.StartZooKeeper(b)
	return server{name: "zookeeper", url: z.URL, addr: z.Addr, peer: "zk.Lock", newPeer: func(b *testing.B, name string) Locker {
		conn, _, err := zk.Connect([]string{z.Addr}, 10*time.Second, zk.WithLogger(log.New(ioDiscard{}, "", 0)))
		if err != nil {
			b.Fatal(err)
		}
		return &zkPeer{conn: conn, l: zk.NewLock(conn, "/peer/"+name, zk.WorldACL(zk.PermAll))}
	}}
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

type zkPeer struct {
	conn *zk.Conn
	l    *zk.Lock
}

func (p *zkPeer) Lock(ctx context.Context) (func(context.Context) error, error) {
	if err := p.l.Lock(); err != nil {
		return nil, err
	}
	return func(context.Context) error { return p.l.Unlock() }, nil
}

func (p *zkPeer) Close() error { p.conn.Close(); return nil }

// Redis: bsm/redislock (it polls; waiters retry every 5ms)

func startRedis(b *testing.B) server {
	r := local.StartRedis(b)
	return server{name: "redis", url: r.URL, addr: r.Addr, peer: "redislock", peerNote: "retry every 5ms", newPeer: func(b *testing.B, name string) Locker {
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		return &redisPeer{rdb: rdb, c: redislock.New(rdb), key: "peer:" + name}
	}}
}

type redisPeer struct {
	rdb *redis.Client
	c   *redislock.Client
	key string
}

func (p *redisPeer) Lock(ctx context.Context) (func(context.Context) error, error) {
	l, err := p.c.Obtain(ctx, p.key, 10*time.Second, &redislock.Options{RetryStrategy: redislock.LinearBackoff(5 * time.Millisecond)})
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

func (p *redisPeer) Close() error { return p.rdb.Close() }

// Consul: api.Lock with a session made once per client (renewed in the
// background), as a long-running process would use it.

func startConsul(b *testing.B) server {
	c := local.StartConsul(b)
	return server{name: "consul", url: c.URL, addr: c.Addr, peer: "api.Lock", peerNote: "agent -dev, Raft in memory", newPeer: func(b *testing.B, name string) Locker {
		cli, err := consul.NewClient(&consul.Config{Address: c.Addr})
		if err != nil {
			b.Fatal(err)
		}
		sid, _, err := cli.Session().Create(&consul.SessionEntry{TTL: "10s", Behavior: consul.SessionBehaviorDelete, LockDelay: time.Nanosecond}, nil)
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		go func() { _ = cli.Session().RenewPeriodic("10s", sid, nil, stop) }()
		return &consulPeer{cli: cli, sid: sid, stop: stop, key: "peer/" + name}
	}}
}

type consulPeer struct {
	cli  *consul.Client
	sid  string
	stop chan struct{}
	key  string
}

func (p *consulPeer) Lock(ctx context.Context) (func(context.Context) error, error) {
	l, err := p.cli.LockOpts(&consul.LockOptions{Key: p.key, Session: p.sid})
	if err != nil {
		return nil, err
	}
	lost, err := l.Lock(nil)
	if err != nil {
		return nil, err
	}
	if lost == nil {
		return nil, fmt.Errorf("consul api.Lock returned no lock")
	}
	return func(context.Context) error { return l.Unlock() }, nil
}

func (p *consulPeer) Close() error {
	close(p.stop)
	_, _ = p.cli.Session().Destroy(p.sid, nil)
	return nil
}
