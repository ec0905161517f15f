package zkcoord

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

func TestTLS(t *testing.T) {
	srv := local.StartZooKeeperTLS(t)
	c := openClient(t, srv.TLSURL)
	s := newSession(t, c)
	g, err := mutex(t, s, "tls").Lock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The plain client sees the same lock: one server, two ports.
	plain := openClient(t, srv.URL)
	if n := contenderCount(t, plain, "tls"); n != 1 {
		t.Fatalf("%d contenders seen over the plain port", n)
	}
	if err := g.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Without the CA the server's certificate is not trusted.
	_, err = coord.Open(ctxT(t, 5*time.Second), "zks://"+srv.TLSAddr, coord.WithDialTimeout(time.Second))
	if !errors.Is(err, coord.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("open without the CA = %v, want ErrUnavailable naming the certificate problem", err)
	}
}
