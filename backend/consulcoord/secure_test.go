package consulcoord

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
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
)

// TestACL: with ACLs on and default-deny, the ?token= is used for every
// request, an unknown token fails Open (not the first lock) without the
// token in the message and not as ErrUnavailable, and a missing one fails
// the first session.
func TestACL(t *testing.T) {
	a := local.StartConsulWith(t, local.ConsulOptions{HCL: []string{
		`acl { enabled = true default_policy = "deny" tokens { initial_management = "root-s3cret-token" } }`,
	}})
	c := openURL(t, a.URL+"?token=root-s3cret-token", coord.WithNamespace(uniqueNS(t)))
	g := mustLock(t, mutex(t, newSession(t, c), "acl"))
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := coord.Open(ctxFor(t, 10*time.Second), a.URL+"?token=wrong-s3cret-token")
	if err == nil || errors.Is(err, coord.ErrUnavailable) || !strings.Contains(err.Error(), "ACL not found") {
		t.Fatalf("Open with an unknown token: %v, want the ACL error (not ErrUnavailable: retrying will not help)", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the token: %v", err)
	}
	// No token: the anonymous token may read (nothing), so Open succeeds; the
	// first session says what is denied.
	anon := openURL(t, a.URL)
	if s, err := anon.NewSession(ctxFor(t, 5*time.Second)); err == nil {
		_ = s.Close(ctxFor(t, 5*time.Second))
		t.Fatal("NewSession with the anonymous token under default-deny succeeded")
	} else if !strings.Contains(err.Error(), "Permission denied") || errors.Is(err, coord.ErrUnavailable) {
		t.Errorf("NewSession without a token: %v, want the agent's permission error (not ErrUnavailable: retrying will not help)", err)
	}
}

// TestTLS: consuls:// with ?ca=&cert=&key= (the agent requires a client
// certificate), with coord.WithTLS instead, and without a CA (refused).
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	files := writeTestPKI(t, dir)
	a := local.StartConsulWith(t, local.ConsulOptions{TLS: &local.ConsulTLS{
		CAFile: files["ca"], CertFile: files["server"], KeyFile: files["server-key"],
	}})
	if !strings.HasPrefix(a.URL, "consuls://") {
		t.Fatalf("URL %s", a.URL)
	}
	withFiles := a.URL + "?ca=" + files["ca"] + "&cert=" + files["client"] + "&key=" + files["client-key"]
	c := openURL(t, withFiles, coord.WithNamespace(uniqueNS(t)))
	g := mustLock(t, mutex(t, newSession(t, c), "tls"))
	if err := g.Unlock(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(files["ca"])
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("read CA: %v", err)
	}
	cert, err := tls.LoadX509KeyPair(files["client"], files["client-key"])
	if err != nil {
		t.Fatal(err)
	}
	openURL(t, a.URL, coord.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))

	for _, u := range []string{
		a.URL + "?cert=" + files["client"] + "&key=" + files["client-key"], // server not trusted
		a.URL + "?ca=" + files["ca"],                                       // no client certificate
	} {
		if _, err := coord.Open(ctxFor(t, 10*time.Second), u, coord.WithDialTimeout(2*time.Second)); !errors.Is(err, coord.ErrUnavailable) {
			t.Errorf("Open(%s) = %v, want ErrUnavailable", u, err)
		}
	}
}

// writeTestPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in dir.
func writeTestPKI(t *testing.T, dir string) map[string]string {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coord test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"ca": write("ca", "CERTIFICATE", caDER)}
	for i, name := range []string{"server", "client"} {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:    []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kDER, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = write(name, "CERTIFICATE", der)
		files[name+"-key"] = write(name+"-key", "PRIVATE KEY", kDER)
	}
	return files
}
