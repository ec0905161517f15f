package etcdcoord_test

import (
	"context"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/backend/etcdcoord"
	"github.com/coordkit/coord/recipes/lock"
)

// Wrap an etcd client the application already has; closing the coord client
// leaves it open.
func ExampleNew() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	c, err := etcdcoord.New(cli, coord.WithNamespace("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	s, err := c.NewSession(ctx, coord.SessionTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	m, err := lock.NewMutex(s, "invoices")
	if err != nil {
		log.Fatal(err)
	}
	g, err := m.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Unlock(ctx)
	log.Printf("holding %s with fencing token %s", g.Name(), g.Token())
}

// Open from a URL: keys go under /apps/<namespace>/ on a TLS cluster.
func Example_open() {
	ctx := context.Background()
	c, err := coord.Open(ctx, "etcds://10.0.0.1:2379,10.0.0.2:2379/apps?ca=/etc/coord/ca.pem&cert=/etc/coord/client.pem&key=/etc/coord/client-key.pem",
		coord.WithDialTimeout(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}
