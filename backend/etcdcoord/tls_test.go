package etcdcoord

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/lock"
)

// pki writes a CA and certificates signed by it (PEM) into dir.
type pki struct {
	t      *testing.T
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

func newPKI(t *testing.T) *pki {
	p := &pki{t: t, dir: t.TempDir()}
	p.caKey, p.caCert = p.issue("ca", nil, true)
	return p
}

// issue creates a certificate (self-signed for the CA) and writes
// <name>.pem and <name>-key.pem.
func (p *pki) issue(name string, ips []net.IP, isCA bool) (*ecdsa.PrivateKey, *x509.Certificate) {
	t := p.t
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  ips,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, key
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		parent, signer = p.caCert, p.caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(p.dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kder)
	return key, cert
}

func (p *pki) file(name string) string { return filepath.Join(p.dir, name) }

// TestTLSClientCertificates runs an etcd that requires client certificates
// (in this process: coordctl dev serves plain HTTP only) and opens it with
// an etcds URL carrying ca, cert and key.
func TestTLSClientCertificates(t *testing.T) {
	p := newPKI(t)
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	p.issue("server", loopback, false)
	p.issue("client", nil, false)

	clientAddr := "127.0.0.1:" + strconv.Itoa(local.FreePort(t))
	peerAddr := "127.0.0.1:" + strconv.Itoa(local.FreePort(t))
	cfg := embed.NewConfig()
	cfg.Name = "tls"
	cfg.Dir = t.TempDir()
	cfg.ListenClientUrls = []url.URL{{Scheme: "https", Host: clientAddr}}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{{Scheme: "http", Host: peerAddr}}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile:       p.file("server.pem"),
		KeyFile:        p.file("server-key.pem"),
		TrustedCAFile:  p.file("ca.pem"),
		ClientCertAuth: true,
	}
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("embedded TLS etcd not ready")
	}

	raw := "etcds://" + clientAddr + "/tls?ca=" + p.file("ca.pem") + "&cert=" + p.file("client.pem") + "&key=" + p.file("client-key.pem")
	c := openClient(t, raw)
	m, _ := lock.NewMutex(newSession(t, c, 5*time.Second), "secure")
	g, err := m.Lock(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("lock over TLS: %v", err)
	}
	if err := g.Unlock(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the server refuses the handshake.
	noCert := "etcds://" + clientAddr + "?ca=" + p.file("ca.pem")
	if c, err := coord.Open(testCtx(t, 10*time.Second), noCert, coord.WithDialTimeout(time.Second)); err == nil {
		_ = c.Close()
		t.Fatal("Open without a client certificate succeeded")
	}
	// Plain etcd:// to a TLS port fails too.
	if c, err := coord.Open(testCtx(t, 10*time.Second), "etcd://"+clientAddr, coord.WithDialTimeout(time.Second)); err == nil {
		_ = c.Close()
		t.Fatal("Open without TLS of a TLS server succeeded")
	}
}
