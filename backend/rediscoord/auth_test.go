package rediscoord_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

func TestACLUserAndPassword(t *testing.T) {
	srv := local.StartRedis(t, "--user", "alice", "on", ">s3cret-pw", "~*", "&*", "+@all", "--user", "default", "off")
	host := strings.TrimPrefix(srv.URL, "redis://")
	c := openURL(t, "redis://alice:s3cret-pw@"+host, coord.WithNamespace("acl"))
	g := mustLock(t, newMutex(t, newSession(t, c, 2*time.Second), "l"))
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := coord.Open(ctxFor(t, 5*time.Second), "redis://alice:wrong-pw@"+host)
	if !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("wrong password: err = %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "wrong-pw") || !strings.Contains(msg, host) {
		t.Fatalf("error %q must name %s and hide the password", msg, host)
	}
}

func TestTLSWithClientCertificate(t *testing.T) {
	dir := t.TempDir()
	files := writeTestPKI(t, dir)
	srv := local.StartRedisTLS(t, local.RedisTLS{CertFile: files["server.pem"], KeyFile: files["server-key.pem"], CAFile: files["ca.pem"]})
	q := "?ca=" + files["ca.pem"] + "&cert=" + files["client.pem"] + "&key=" + files["client-key.pem"]
	c := openURL(t, srv.URL+q, coord.WithNamespace("tls"))
	g := mustLock(t, newMutex(t, newSession(t, c, 2*time.Second), "l"))
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Without the CA the server's certificate is not trusted; without a
	// client certificate the server refuses the connection.
	for _, u := range []string{srv.URL, srv.URL + "?ca=" + files["ca.pem"]} {
		_, err := coord.Open(ctxFor(t, 5*time.Second), u, coord.WithDialTimeout(2*time.Second))
		if !errors.Is(err, coord.ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", u, err)
		}
	}
	// Plain redis:// against the TLS port fails too.
	_, err := coord.Open(ctxFor(t, 5*time.Second), strings.Replace(srv.URL, "rediss://", "redis://", 1), coord.WithDialTimeout(time.Second))
	if !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("redis:// on a TLS port: err = %v, want ErrUnavailable", err)
	}
}

// writeTestPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files in dir.
func writeTestPKI(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	write := func(name, typ string, der []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coord test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kd)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	leaf("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return files
}
