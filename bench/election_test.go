package bench

import (
	"context"
	"log"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/coordkit/coord/recipes/election"
	"github.com/go-zookeeper/zk"
	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// BenchmarkElection measures, per backend: a campaign+resign cycle of one
// candidate; the handoff time from the leader's Resign to the return of the
// Campaign of a follower that had already queued; and, as the yardstick for
// the handoff target, one raw write of the backend's own client. On etcd the
// peer is concurrency.Election on the same server.
func BenchmarkElection(b *testing.B) {
	for _, be := range []struct {
		name  string
		start func(b *testing.B) server
	}{{"etcd", startEtcd}, {"zookeeper", startZooKeeper}, {"redis", startRedis}, {"consul", startConsul}} {
		b.Run(be.name, func(b *testing.B) {
			srv := be.start(b)
			b.Run("cycle/coord", func(b *testing.B) { coordCycle(b, srv) })
			b.Run("handoff/coord", func(b *testing.B) { coordHandoff(b, srv) })
			if srv.name == "etcd" {
				b.Run("cycle/concurrency.Election", func(b *testing.B) { etcdElectionCycle(b, srv) })
				b.Run("handoff/concurrency.Election", func(b *testing.B) { etcdElectionHandoff(b, srv) })
			}
			b.Run("raw-write/"+srv.name+"-client", func(b *testing.B) { rawWrite(b, srv) })
		})
	}
}

func openSession(b *testing.B, url string) (*coord.Client, *coord.Session) {
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
	b.Cleanup(func() { _ = s.Close(context.Background()); _ = c.Close() })
	return c, s
}

func coordCycle(b *testing.B, srv server) {
	_, s := openSession(b, srv.url)
	e, err := election.New(s, uniq("cycle-"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	waits := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		term, err := e.Campaign(ctx, []byte("v"))
		if err != nil {
			b.Fatal(err)
		}
		waits = append(waits, time.Since(t0))
		if err := term.Resign(ctx); err != nil {
			b.Fatal(err)
		}
	}
	record(b, srv, "election cycle", "coord", "", time.Since(start), waits)
}

// queued waits until name has want candidacies on the server (a benchmark
// observation outside the measured interval).
func queued(b *testing.B, c *coord.Client, name string, want int) {
	in := c.Driver().(driver.Inspector)
	for {
		n, err := in.Contenders(context.Background(), "election", name)
		if err != nil {
			b.Fatal(err)
		}
		if n >= want {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func coordHandoff(b *testing.B, srv server) {
	name := uniq("handoff-")
	c1, s1 := openSession(b, srv.url)
	_, s2 := openSession(b, srv.url)
	e := [2]*election.Election{}
	var err error
	if e[0], err = election.New(s1, name); err != nil {
		b.Fatal(err)
	}
	if e[1], err = election.New(s2, name); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	term, err := e[0].Campaign(ctx, []byte("0"))
	if err != nil {
		b.Fatal(err)
	}
	handoffs := make([]time.Duration, 0, b.N)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		next := e[(i+1)%2]
		got := make(chan *election.Term, 1)
		errs := make(chan error, 1)
		go func() {
			t, err := next.Campaign(ctx, []byte("v"))
			if err != nil {
				errs <- err
				return
			}
			got <- t
		}()
		queued(b, c1, name, 2)
		b.StartTimer()
		t0 := time.Now()
		if err := term.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		select {
		case term = <-got:
		case err := <-errs:
			b.Fatal(err)
		}
		d := time.Since(t0)
		handoffs = append(handoffs, d)
		total += d
	}
	b.StopTimer()
	_ = term.Resign(ctx)
	record(b, srv, "election handoff", "coord", "", total, handoffs)
}

func etcdClient(b *testing.B, srv server) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.Close() })
	return cli
}

func etcdSession(b *testing.B, cli *clientv3.Client) *concurrency.Session {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func etcdElectionCycle(b *testing.B, srv server) {
	cli := etcdClient(b, srv)
	e := concurrency.NewElection(etcdSession(b, cli), "/peer/"+uniq("cycle-"))
	ctx := context.Background()
	waits := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := e.Campaign(ctx, "v"); err != nil {
			b.Fatal(err)
		}
		waits = append(waits, time.Since(t0))
		if err := e.Resign(ctx); err != nil {
			b.Fatal(err)
		}
	}
	record(b, srv, "election cycle", "concurrency.Election", "", time.Since(start), waits)
}

func etcdElectionHandoff(b *testing.B, srv server) {
	pfx := "/peer/" + uniq("handoff-")
	cli := etcdClient(b, srv)
	es := [2]*concurrency.Election{
		concurrency.NewElection(etcdSession(b, cli), pfx),
		concurrency.NewElection(etcdSession(b, etcdClient(b, srv)), pfx),
	}
	ctx := context.Background()
	if err := es[0].Campaign(ctx, "0"); err != nil {
		b.Fatal(err)
	}
	handoffs := make([]time.Duration, 0, b.N)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		leader, next := es[i%2], es[(i+1)%2]
		done := make(chan error, 1)
		go func() { done <- next.Campaign(ctx, "v") }()
		for { // wait until the follower's key is queued
			r, err := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				b.Fatal(err)
			}
			if r.Count >= 2 {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		b.StartTimer()
		t0 := time.Now()
		if err := leader.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		handoffs = append(handoffs, d)
		total += d
	}
	b.StopTimer()
	record(b, srv, "election handoff", "concurrency.Election", "", total, handoffs)
}

// rawWrite measures one write of the backend's own client: etcd Put,
// ZooKeeper Set, Redis SET, Consul KV Put.
func rawWrite(b *testing.B, srv server) {
	ctx := context.Background()
	var write func() error
	switch srv.name {
	case "etcd":
		cli := etcdClient(b, srv)
		write = func() error { _, err := cli.Put(ctx, "/peer/raw", "v"); return err }
	case "zookeeper":
		conn, _, err := zk.Connect([]string{srv.addr}, 10*time.Second, zk.WithLogger(log.New(ioDiscard{}, "", 0)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(conn.Close)
		if _, err := conn.Create("/peer-raw", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
		write = func() error { _, err := conn.Set("/peer-raw", []byte("v"), -1); return err }
	case "redis":
		rdb := redis.NewClient(&redis.Options{Addr: srv.addr})
		b.Cleanup(func() { _ = rdb.Close() })
		write = func() error { return rdb.Set(ctx, "peer:raw", "v", 0).Err() }
	case "consul":
		cli, err := consul.NewClient(&consul.Config{Address: srv.addr})
		if err != nil {
			b.Fatal(err)
		}
		write = func() error {
			_, err := cli.KV().Put(&consul.KVPair{Key: "peer/raw", Value: []byte("v")}, nil)
			return err
		}
	default:
		b.Fatalf("no raw client for %s", srv.name)
	}
	if err := write(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := write(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	record(b, srv, "raw write", srv.name+" client", "", time.Since(start), lat)
}

func record(b *testing.B, srv server, kase, impl, note string, total time.Duration, lat []time.Duration) {
	p50, p99 := Percentile(lat, 50), Percentile(lat, 99)
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns")
	results.Record(Result{Backend: srv.name, Case: kase, Impl: impl, Note: note,
		NsPerOp: float64(total.Nanoseconds()) / float64(b.N), P50: p50, P99: p99})
}
