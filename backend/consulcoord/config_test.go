package consulcoord

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
)

func TestParseConfig(t *testing.T) {
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	tests := []struct {
		url  string
		want urlConfig
	}{
		{"consul://127.0.0.1:8500", urlConfig{Address: "127.0.0.1:8500", Scheme: "http"}},
		{"consul://agent", urlConfig{Address: "agent:8500", Scheme: "http"}},
		{"consul://h:1234/app/x?token=s3cret&dc=dc2", urlConfig{Address: "h:1234", Scheme: "http", Token: "s3cret", Datacenter: "dc2", Path: "app/x"}},
		{"consuls://h:8501?ca=/ca.pem&cert=/c.pem&key=/k.pem", urlConfig{Address: "h:8501", Scheme: "https", CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}},
		{"consuls://h?ca=/ca.pem", urlConfig{Address: "h:8500", Scheme: "https", CAFile: "/ca.pem"}},
		{"consul://bob:pw@h", urlConfig{Address: "h:8500", Scheme: "http", User: "bob", Password: "pw", HasAuth: true}},
		{"consul://[::1]:8500/p/", urlConfig{Address: "[::1]:8500", Scheme: "http", Path: "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := coord.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseConfig(u)
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got != tt.want {
				t.Fatalf("parseConfig(%s)\n got  %+v\n want %+v", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseConfigTokenFromEnv(t *testing.T) {
	t.Setenv("CONSUL_HTTP_TOKEN", "from-env")
	for _, tt := range []struct{ url, want string }{
		{"consul://h", "from-env"},
		{"consul://h?token=from-url", "from-url"},
	} {
		u, err := coord.ParseURL(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		if got.Token != tt.want {
			t.Errorf("%s: token %q, want %q", tt.url, got.Token, tt.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ url, mention string }{
		{"consul://h1,h2?token=s3cret", "one agent"},
		{"consul://h?foo=1&token=s3cret", "foo"},
		{"consul://h?ca=/ca.pem&token=s3cret", "consuls://"},
		{"consuls://h?cert=/c.pem&token=s3cret", "cert and key"},
		{"consul://h?dc=a&dc=b&token=s3cret", "dc"},
		{"consul://h/a//b?token=s3cret", "prefix"},
		{"consul://h/a/../b?token=s3cret", "prefix"},
		{"etcd://h?token=s3cret", "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := coord.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseConfig(u)
			if !errors.Is(err, coord.ErrInvalidURL) {
				t.Fatalf("err = %v, want ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func TestGrantTTL(t *testing.T) {
	tests := []struct {
		in, want time.Duration
		fail     bool
	}{
		{0, 10 * time.Second, false},
		{time.Second, 10 * time.Second, false},
		{10 * time.Second, 10 * time.Second, false},
		{10*time.Second + time.Millisecond, 11 * time.Second, false},
		{time.Minute, time.Minute, false},
		{24 * time.Hour, 24 * time.Hour, false},
		{25 * time.Hour, 0, true},
	}
	for _, tt := range tests {
		got, err := grantTTL(tt.in)
		if (err != nil) != tt.fail || got != tt.want {
			t.Errorf("grantTTL(%s) = %s, %v; want %s, fail=%v", tt.in, got, err, tt.want, tt.fail)
		}
	}
}

func TestParseContenders(t *testing.T) {
	const p = "coord/lock/a/"
	pairs := []*api.KVPair{
		{Key: p + "s2-n", Session: "s2", CreateIndex: 30, ModifyIndex: 31},
		{Key: p + "s1-n", Session: "s1", CreateIndex: 20, ModifyIndex: 20, Value: []byte("1500")},
		{Key: p + "b/s9-n", CreateIndex: 5}, // lock "a/b": not ours, and no session
		{Key: "coord/lock/ab/s8-n", CreateIndex: 1},
		{Key: p + "s3-n", Session: "s3", CreateIndex: 25, ModifyIndex: 25},
	}
	cs, err := parseContenders(p, pairs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.session)
	}
	if strings.Join(got, ",") != "s1,s3,s2" {
		t.Fatalf("order %v, want s1,s3,s2 (by CreateIndex, own children only)", got)
	}
	if cs[0].lockDelay != 1500*time.Millisecond || cs[1].lockDelay != 0 || cs[2].modify != 31 {
		t.Fatalf("fields not decoded: %+v", cs)
	}
	if position(cs, p+"s3-n", 25) != 1 || position(cs, p+"s3-n", 26) != -1 {
		t.Fatal("position must match key and CreateIndex")
	}
	for _, bad := range []*api.KVPair{
		{Key: p + "x", CreateIndex: 1},
		{Key: p + "y", Session: "s", CreateIndex: 1, Value: []byte("soon")},
	} {
		if _, err := parseContenders(p, []*api.KVPair{bad}); !errors.Is(err, coord.ErrCorrupt) {
			t.Errorf("%+v: err = %v, want ErrCorrupt", bad, err)
		}
	}
}
