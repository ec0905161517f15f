package etcdcoord

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

func init() { coord.Register(open, "etcd", "etcds") }

// tlsParams are the query parameters an etcds URL accepts: file paths of the
// CA bundle, the client certificate and its private key.
var tlsParams = []string{"ca", "cert", "key"}

// open is the coord.Opener for etcd:// and etcds:// URLs. It connects and
// makes one linearizable read within ctx, so an unreachable cluster (or one
// without a leader) fails within the dial timeout.
func open(ctx context.Context, u *coord.URL, o coord.Options) (driver.Client, error) {
	cfg, root, err := configFromURL(u, o)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < cfg.DialTimeout {
			cfg.DialTimeout = max(left, time.Millisecond)
		}
	}
	eps := strings.Join(u.Hosts, ",")
	cli, err := clientv3.New(cfg)
	if err != nil {
		if errors.Is(err, rpctypes.ErrAuthFailed) {
			return nil, fmt.Errorf("etcd at %s: authentication failed for user %q", eps, u.User)
		}
		return nil, fmt.Errorf("etcd at %s: connect: %w: %v", eps, coord.ErrUnavailable, err)
	}
	// One round trip through the leader proves the cluster serves requests.
	if _, err := cli.Get(ctx, root, clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		switch {
		case errors.Is(err, rpctypes.ErrUserEmpty):
			return nil, fmt.Errorf("etcd at %s requires authentication: give user:password@ in the URL", eps)
		case errors.Is(err, rpctypes.ErrPermissionDenied):
			return nil, fmt.Errorf("etcd at %s: user %q may not read under %s: %v", eps, u.User, root, err)
		}
		return nil, fmt.Errorf("etcd at %s did not answer: %w: %v", eps, coord.ErrUnavailable, err)
	}
	return &client{cli: cli, owned: true, root: root, endpoints: eps}, nil
}

// configFromURL maps a parsed URL and options to a clientv3 configuration and
// the root key prefix. Its errors wrap coord.ErrInvalidURL.
func configFromURL(u *coord.URL, o coord.Options) (clientv3.Config, string, error) {
	var cfg clientv3.Config
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", coord.ErrInvalidURL, fmt.Sprintf(format, args...))
	}
	if u.Backend() != "etcd" {
		return cfg, "", bad("scheme %q is not etcd or etcds", u.Scheme)
	}
	for k := range u.Query {
		known := false
		for _, p := range tlsParams {
			known = known || k == p
		}
		if !known {
			return cfg, "", bad("unknown parameter %q (etcds URLs accept ca, cert and key)", k)
		}
	}
	if u.Path != "" {
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return cfg, "", bad("key prefix %q has an empty, \".\" or \"..\" segment", u.Path)
			}
		}
	}
	tlsCfg, err := tlsFromURL(u)
	if err != nil {
		return cfg, "", err
	}
	if o.TLS != nil {
		tlsCfg = o.TLS
	}
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	for _, h := range u.Hosts {
		cfg.Endpoints = append(cfg.Endpoints, scheme+h)
	}
	cfg.TLS = tlsCfg
	cfg.Username = u.User
	cfg.Password = u.Password
	cfg.DialTimeout = o.DialTimeout
	// Detect a dead connection (server paused, network cut) without waiting
	// for TCP: the session's own deadline still decides when it is lost.
	cfg.DialKeepAliveTime = 10 * time.Second
	cfg.DialKeepAliveTimeout = 5 * time.Second
	cfg.Logger = zap.NewNop()
	return cfg, rootKey(u.Path, o.Namespace), nil
}

// tlsFromURL builds the TLS configuration of an etcds URL (nil for etcd://).
func tlsFromURL(u *coord.URL) (*tls.Config, error) {
	q := u.Query
	if !u.TLS() {
		for _, p := range tlsParams {
			if q.Has(p) {
				return nil, fmt.Errorf("%w: parameter %q needs the etcds:// scheme", coord.ErrInvalidURL, p)
			}
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := q.Get("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %v", coord.ErrInvalidURL, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca: no PEM certificate in %s", coord.ErrInvalidURL, ca)
		}
		cfg.RootCAs = pool
	}
	cert, key := q.Get("cert"), q.Get("key")
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: cert/key: %v", coord.ErrInvalidURL, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, fmt.Errorf("%w: cert and key must be given together", coord.ErrInvalidURL)
	}
	return cfg, nil
}
