package rediscoord

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
)

func TestRedisOptionsFromURL(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	type want struct {
		addr, user, pass string
		db               int
		tls              bool
		serverName       string
	}
	cases := []struct {
		url  string
		want want
		err  error // sentinel the error must wrap
	}{
		{url: "redis://127.0.0.1", want: want{addr: "127.0.0.1:6379"}},
		{url: "redis://h:7000/3", want: want{addr: "h:7000", db: 3}},
		{url: "redis://alice:s3cret@h:7000/0", want: want{addr: "h:7000", user: "alice", pass: "s3cret"}},
		{url: "redis://:onlypass@h", want: want{addr: "h:6379", pass: "onlypass"}},
		{url: "rediss://h.example:6380/2", want: want{addr: "h.example:6380", db: 2, tls: true, serverName: "h.example"}},
		{url: "redis://h/abc", err: coord.ErrInvalidURL},
		{url: "redis://h/-1", err: coord.ErrInvalidURL},
		{url: "redis://h1,h2", err: coord.ErrInvalidURL},
		{url: "redis://h1,h2,h3?mode=redlock", err: coord.ErrUnsupported},
		{url: "redis://h?mode=cluster", err: coord.ErrInvalidURL},
		{url: "redis://h?timeout=3s", err: coord.ErrInvalidURL},
		{url: "redis://h?ca=/x.pem", err: coord.ErrInvalidURL},
		{url: "rediss://h?ca=/does/not/exist.pem", err: coord.ErrInvalidURL},
		{url: "rediss://h?ca=" + caFile, err: coord.ErrInvalidURL},
		{url: "rediss://h?cert=/c.pem", err: coord.ErrInvalidURL},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			u, err := coord.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			ro, err := redisOptions(u, coord.ResolveOptions(coord.WithDialTimeout(1500*time.Millisecond)))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{addr: ro.Addr, user: ro.Username, pass: ro.Password, db: ro.DB, tls: ro.TLSConfig != nil}
			if ro.TLSConfig != nil {
				got.serverName = ro.TLSConfig.ServerName
			}
			if got != tc.want {
				t.Fatalf("options %+v, want %+v", got, tc.want)
			}
			if ro.DialTimeout != 1500*time.Millisecond {
				t.Fatalf("DialTimeout = %s, want 1.5s", ro.DialTimeout)
			}
			if ro.MaxRetries != -1 || !ro.ContextTimeoutEnabled {
				t.Fatalf("MaxRetries = %d, ContextTimeoutEnabled = %v; want -1, true", ro.MaxRetries, ro.ContextTimeoutEnabled)
			}
		})
	}
}

func TestKeyLayoutIsUnambiguous(t *testing.T) {
	c := &client{ns: "app"}
	a, b := c.lockBase("a"), c.lockBase("a:fence")
	if a+":fence" == b || strings.HasPrefix(b, a+":") {
		t.Fatalf("lock keys %q and %q overlap", a, b)
	}
	if got := c.lockBase("x/y"); got != "app:lock:{x/y}" {
		t.Fatalf("lockBase = %q", got)
	}
	if got := c.sessionKey("ab12"); got != "app:session:ab12" {
		t.Fatalf("sessionKey = %q", got)
	}
}

func TestIsHexID(t *testing.T) {
	for id, want := range map[string]bool{randomID(16): true, "": false, "abc": false, "ab:cd": false, "ABCD": false, "0a1b": true} {
		if got := isHexID(id); got != want {
			t.Errorf("isHexID(%q) = %v, want %v", id, got, want)
		}
	}
}
