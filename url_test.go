package coord

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw      string
		backend  string
		tls      bool
		user     string
		password string
		hosts    []string
		path     string
		query    map[string]string
	}{
		{raw: "etcd://127.0.0.1:2379", backend: "etcd", hosts: []string{"127.0.0.1:2379"}},
		{raw: "etcd://h1,h2:2380,h3/app", backend: "etcd", hosts: []string{"h1:2379", "h2:2380", "h3:2379"}, path: "app"},
		{raw: "etcds://u:p%40ss@h1:2379/pfx?ca=/ca.pem", backend: "etcd", tls: true, user: "u", password: "p@ss", hosts: []string{"h1:2379"}, path: "pfx", query: map[string]string{"ca": "/ca.pem"}},
		{raw: "zk://digest:secret@z1:2181,z2:2181/chroot/app", backend: "zk", user: "digest", password: "secret", hosts: []string{"z1:2181", "z2:2181"}, path: "chroot/app"},
		{raw: "redis://:pw@localhost/3", backend: "redis", password: "pw", hosts: []string{"localhost:6379"}, path: "3"},
		{raw: "rediss://r1,r2,r3?mode=redlock", backend: "redis", tls: true, hosts: []string{"r1:6379", "r2:6379", "r3:6379"}, query: map[string]string{"mode": "redlock"}},
		{raw: "consul://c1:8500/kv?token=t0k&dc=east", backend: "consul", hosts: []string{"c1:8500"}, path: "kv", query: map[string]string{"token": "t0k", "dc": "east"}},
		{raw: "CONSULS://[::1]:8501", backend: "consul", tls: true, hosts: []string{"[::1]:8501"}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := ParseURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if u.Backend() != tt.backend || u.TLS() != tt.tls {
				t.Errorf("backend %q tls %v, want %q %v", u.Backend(), u.TLS(), tt.backend, tt.tls)
			}
			if u.User != tt.user || u.Password != tt.password {
				t.Errorf("user %q password %q, want %q %q", u.User, u.Password, tt.user, tt.password)
			}
			if !reflect.DeepEqual(u.Hosts, tt.hosts) {
				t.Errorf("hosts %v, want %v", u.Hosts, tt.hosts)
			}
			if u.Path != tt.path {
				t.Errorf("path %q, want %q", u.Path, tt.path)
			}
			for k, v := range tt.query {
				if u.Query.Get(k) != v {
					t.Errorf("query %s = %q, want %q", k, u.Query.Get(k), v)
				}
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", "want scheme://"},
		{"127.0.0.1:2379", "want scheme://"},
		{"etcd://", "no host"},
		{"etcd://h1,,h2", "empty host"},
		{"etcd://h1:99999", "port"},
		{"etcd://h1:abc", "port"},
		{"etcd://::1:2379", "brackets"},
		{"etcd://[::1", "missing ']'"},
		{"etcd://h 1:2379", "invalid character"},
		{"etcd://h1#frag", "fragment"},
		{"et cd://h1", "scheme"},
		{"redis://h:1?x=%zz", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := ParseURL(tt.raw)
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("err = %v, want ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	const secret = "hunter2"
	raws := []string{
		"etcd://root:" + secret + "@h1:2379/p",
		"consul://h:8500?token=" + secret + "&dc=x",
		"etcds://h?key=/" + secret + ".pem&ca=/ca.pem",
		"redis://u:" + secret + "@h1:abc", // does not parse
		"zk://u:" + secret + "@[::1",      // does not parse
	}
	for _, raw := range raws {
		u, err := ParseURL(raw)
		var shown string
		if err != nil {
			shown = err.Error()
		} else {
			shown = u.Redacted() + " " + u.RedactString("dial "+u.String()+" failed")
			if !strings.Contains(u.String(), secret) {
				t.Errorf("String() of %q lost the secret", raw)
			}
		}
		if strings.Contains(shown, secret) {
			t.Errorf("secret leaked for %q: %s", raw, shown)
		}
		if !strings.Contains(shown, "xxxxx") {
			t.Errorf("no redaction marker for %q: %s", raw, shown)
		}
	}
}

func TestURLRoundTrip(t *testing.T) {
	for _, raw := range []string{"etcd://a:1,b:2/x", "consul://u:p@c:8500/kv?dc=east&token=t"} {
		u, err := ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := ParseURL(u.String())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(u, u2) {
			t.Errorf("round trip of %q: %+v != %+v", raw, u, u2)
		}
	}
}
