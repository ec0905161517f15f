package consulcoord

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

// TestOpenUnreachable: an agent that refuses connections, or accepts them
// and never answers, fails Open with ErrUnavailable within the dial timeout,
// naming the address and never the token.
func TestOpenUnreachable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	var held []net.Conn
	var mu sync.Mutex
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answer
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = silent.Close()
		conns.Wait()
		for _, c := range held {
			_ = c.Close()
		}
	})
	refused := "127.0.0.1:" + strconv.Itoa(local.FreePort(t))
	for _, addr := range []string{refused, silent.Addr().String()} {
		t.Run(addr, func(t *testing.T) {
			start := time.Now()
			_, err := coord.Open(ctxFor(t, 30*time.Second), "consul://"+addr+"?token=s3cret", coord.WithDialTimeout(500*time.Millisecond))
			took := time.Since(start)
			if !errors.Is(err, coord.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if took > 2*time.Second {
				t.Errorf("Open took %s with a 500ms dial timeout", took)
			}
			if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q must name %s and hide the token", err, addr)
			}
		})
	}
}
