package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/go-zookeeper/zk"
)

func TestConfigureFromURL(t *testing.T) {
	tests := []struct {
		url     string
		opts    []coord.Option
		servers []string
		root    string
		auth    string
		authACL bool
		tls     bool
		err     error
	}{
		{url: "zk://h1,h2:2182", servers: []string{"h1:2181", "h2:2182"}, root: "/coord"},
		{url: "zk://127.0.0.1:2181/app/x", servers: []string{"127.0.0.1:2181"}, root: "/app/x/coord"},
		{url: "zk://u:p%40ss@h/app", servers: []string{"h:2181"}, root: "/app/coord", auth: "u:p@ss", authACL: true},
		{url: "zk://h", opts: []coord.Option{coord.WithNamespace("team-a")}, servers: []string{"h:2181"}, root: "/team-a"},
		{url: "zks://h:2281", servers: []string{"h:2281"}, root: "/coord", tls: true},
		{url: "zk://h/zookeeper", err: coord.ErrInvalidURL},
		{url: "zk://h/zookeeper/quota", err: coord.ErrInvalidURL},
		{url: "zk://h/a/../b", err: coord.ErrInvalidURL},
		{url: "zk://h/a//b", err: coord.ErrInvalidURL},
		{url: "zk://h?timeout=3s", err: coord.ErrInvalidURL},
		{url: "zk://h?ca=/tmp/ca.pem", err: coord.ErrInvalidURL},
		{url: "zks://h?ca=/nonexistent/ca.pem", err: coord.ErrInvalidURL},
		{url: "zks://h?cert=/nonexistent/c.pem", err: coord.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := coord.ParseURL(tt.url)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			c, err := configure(u, coord.ResolveOptions(tt.opts...))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c.servers) != fmt.Sprint(tt.servers) || c.root != tt.root || string(c.auth) != tt.auth || (c.tls != nil) != tt.tls {
				t.Fatalf("got servers %v root %q auth %q tls %v", c.servers, c.root, c.auth, c.tls != nil)
			}
			wantACL := zk.WorldACL(zk.PermAll)
			if tt.authACL {
				wantACL = zk.AuthACL(zk.PermAll)
			}
			if fmt.Sprint(c.acl) != fmt.Sprint(wantACL) {
				t.Fatalf("acl %v, want %v", c.acl, wantACL)
			}
		})
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	_, err := coord.Open(context.Background(), "zk://user:s3cr3tPW@127.0.0.1:1/zookeeper")
	if !errors.Is(err, coord.ErrInvalidURL) || strings.Contains(err.Error(), "s3cr3tPW") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenUnreachableFailsWithinDialTimeout(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", local.FreePort(t))
	start := time.Now()
	_, err := coord.Open(context.Background(), "zk://u:s3cr3tPW@"+addr, coord.WithDialTimeout(700*time.Millisecond))
	took := time.Since(start)
	if !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "s3cr3tPW") {
		t.Fatalf("error should name %s without the password: %v", addr, err)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if took > 2*time.Second {
		t.Fatalf("Open took %s with a 700ms dial timeout", took)
	}
}
