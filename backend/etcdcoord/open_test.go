package etcdcoord

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "coord-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestConfigFromURL(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	override := &tls.Config{ServerName: "override"}
	type want struct {
		endpoints  []string
		user, pass string
		root       string
		tls        bool
		clientCert bool
		rootCAs    bool
		override   bool
	}
	cases := []struct {
		name string
		url  string
		opts []coord.Option
		want want
		err  string // substring of the error; empty means success
	}{
		{name: "default port", url: "etcd://127.0.0.1",
			want: want{endpoints: []string{"http://127.0.0.1:2379"}, root: "/coord/"}},
		{name: "several hosts", url: "etcd://h1:1,h2:2,[::1]:3",
			want: want{endpoints: []string{"http://h1:1", "http://h2:2", "http://[::1]:3"}, root: "/coord/"}},
		{name: "credentials", url: "etcd://alice:s3cr%40t@h:2379",
			want: want{endpoints: []string{"http://h:2379"}, user: "alice", pass: "s3cr@t", root: "/coord/"}},
		{name: "prefix and namespace", url: "etcd://h/apps/billing", opts: []coord.Option{coord.WithNamespace("ns1")},
			want: want{endpoints: []string{"http://h:2379"}, root: "/apps/billing/ns1/"}},
		{name: "namespace only", url: "etcd://h", opts: []coord.Option{coord.WithNamespace("team.a")},
			want: want{endpoints: []string{"http://h:2379"}, root: "/team.a/"}},
		{name: "tls system roots", url: "etcds://h:2379",
			want: want{endpoints: []string{"https://h:2379"}, root: "/coord/", tls: true}},
		{name: "tls ca cert key", url: "etcds://h:2379/p?ca=" + cert + "&cert=" + cert + "&key=" + key,
			want: want{endpoints: []string{"https://h:2379"}, root: "/p/coord/", tls: true, clientCert: true, rootCAs: true}},
		{name: "tls option overrides url", url: "etcds://h?ca=" + cert, opts: []coord.Option{coord.WithTLS(override)},
			want: want{endpoints: []string{"https://h:2379"}, root: "/coord/", tls: true, override: true}},
		{name: "tls option enables tls", url: "etcd://h", opts: []coord.Option{coord.WithTLS(override)},
			want: want{endpoints: []string{"https://h:2379"}, root: "/coord/", tls: true, override: true}},
		{name: "unknown parameter", url: "etcd://h?timeout=3s", err: `unknown parameter "timeout"`},
		{name: "tls parameter without etcds", url: "etcd://h?ca=" + cert, err: "needs the etcds:// scheme"},
		{name: "cert without key", url: "etcds://h?cert=" + cert, err: "cert and key must be given together"},
		{name: "missing ca file", url: "etcds://h?ca=" + filepath.Join(dir, "nope.pem"), err: "ca:"},
		{name: "ca without pem", url: "etcds://h?ca=" + notPEM, err: "no PEM certificate"},
		{name: "bad key pair", url: "etcds://h?cert=" + cert + "&key=" + notPEM, err: "cert/key"},
		{name: "empty prefix segment", url: "etcd://h/a//b", err: "empty"},
		{name: "dot dot prefix", url: "etcd://h/a/..", err: `".."`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := coord.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			o := coord.ResolveOptions(append([]coord.Option{coord.WithDialTimeout(3 * time.Second)}, tc.opts...)...)
			cfg, root, err := configFromURL(u, o)
			if tc.err != "" {
				if err == nil || !errors.Is(err, coord.ErrInvalidURL) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrInvalidURL containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if !reflect.DeepEqual(cfg.Endpoints, w.endpoints) {
				t.Errorf("endpoints = %q, want %q", cfg.Endpoints, w.endpoints)
			}
			if cfg.Username != w.user || cfg.Password != w.pass {
				t.Errorf("credentials = %q/%q, want %q/%q", cfg.Username, cfg.Password, w.user, w.pass)
			}
			if root != w.root {
				t.Errorf("root = %q, want %q", root, w.root)
			}
			if cfg.DialTimeout != 3*time.Second {
				t.Errorf("dial timeout = %v, want 3s", cfg.DialTimeout)
			}
			if (cfg.TLS != nil) != w.tls {
				t.Fatalf("TLS = %v, want enabled=%v", cfg.TLS, w.tls)
			}
			if w.override && cfg.TLS != override {
				t.Errorf("TLS is not the coord.WithTLS configuration")
			}
			if cfg.TLS != nil && !w.override {
				if got := len(cfg.TLS.Certificates) > 0; got != w.clientCert {
					t.Errorf("client certificate present = %v, want %v", got, w.clientCert)
				}
				if got := cfg.TLS.RootCAs != nil; got != w.rootCAs {
					t.Errorf("custom roots = %v, want %v", got, w.rootCAs)
				}
			}
		})
	}
}

func TestOpenUnreachableFailsWithinDialTimeout(t *testing.T) {
	port := strconv.Itoa(local.FreePort(t)) // nothing listens there
	for _, raw := range []string{
		"etcd://127.0.0.1:" + port,                      // the first read times out
		"etcd://bob:hunter2@127.0.0.1:" + port + "/app", // authentication times out
	} {
		const dial = 800 * time.Millisecond
		start := time.Now()
		c, err := coord.Open(testCtx(t, 10*time.Second), raw, coord.WithDialTimeout(dial))
		took := time.Since(start)
		if err == nil {
			_ = c.Close()
			t.Fatal("Open of an unreachable endpoint succeeded")
		}
		if !errors.Is(err, coord.ErrUnavailable) {
			t.Errorf("err = %v, want ErrUnavailable", err)
		}
		if took > dial+500*time.Millisecond {
			t.Errorf("Open took %v with a %v dial timeout", took, dial)
		}
		msg := err.Error()
		if !strings.Contains(msg, "etcd at 127.0.0.1:"+port) {
			t.Errorf("error does not name the endpoint: %s", msg)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("error leaks the password: %s", msg)
		}
		t.Logf("unreachable: %v after %v", err, took.Round(time.Millisecond))
	}
}

func TestOpenAndNew(t *testing.T) {
	e := startEtcd(t)
	c := openClient(t, e.URL+"/apps")
	if c.Backend() != "etcd" {
		t.Fatalf("Backend() = %q", c.Backend())
	}
	if got, want := driverOf(t, c).root, "/apps/t-TestOpenAndNew/"; got != want {
		t.Fatalf("root = %q, want %q", got, want)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	wrapped, err := New(cli, coord.WithNamespace("mine"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, wrapped, 5*time.Second)
	if _, err := driverOf(t, wrapped).Lock(testCtx(t, 5*time.Second), s.Driver(), "x", lockOpts(false)); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(testCtx(t, 5*time.Second), "/mine/lock/x/~/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 1 {
		t.Fatalf("%d keys under /mine/lock/x/~/, want 1", resp.Count)
	}
	if err := s.Close(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := wrapped.Close(); err != nil {
		t.Fatal(err)
	}
	// The user's client must still work after the coord client is closed.
	if _, err := cli.Get(testCtx(t, 5*time.Second), "probe"); err != nil {
		t.Fatalf("native client unusable after coord Close: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}
