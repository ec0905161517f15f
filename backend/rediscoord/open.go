package rediscoord

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/redis/go-redis/v9"
)

func init() { coord.Register(open, "redis", "rediss") }

// urlParams are the query parameters a Redis URL accepts.
var urlParams = map[string]bool{"ca": true, "cert": true, "key": true, "mode": true}

// open is the URL opener for redis:// and rediss:// (see the package doc). It
// pings the server within ctx (the dial timeout) and fails with an error
// wrapping coord.ErrUnavailable, naming the address, when it does not answer.
func open(ctx context.Context, u *coord.URL, o coord.Options) (driver.Client, error) {
	ro, err := redisOptions(u, o)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: ping: %s: %w", ro.Addr, u.RedactString(err.Error()), coord.ErrUnavailable)
	}
	c, err := newClient(rdb, true, o)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return c, nil
}

// redisOptions maps a parsed URL and coord options to go-redis options:
// user:pass@ → ACL Username/Password, the path → DB number, ?ca= &cert= &key=
// → TLS (rediss only), DialTimeout → dial timeout. go-redis retries are off
// (coord repeats only what is safe to repeat) and context deadlines bound
// every call.
func redisOptions(u *coord.URL, o coord.Options) (*redis.Options, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", coord.ErrInvalidURL, fmt.Sprintf(format, args...))
	}
	if b := u.Backend(); b != "redis" {
		return nil, bad("scheme %q is not a Redis scheme (want redis:// or rediss://)", u.Scheme)
	}
	var unknown []string
	for k := range u.Query {
		if !urlParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, bad("unknown parameter(s) %s (known: ca, cert, key, mode)", strings.Join(unknown, ", "))
	}
	switch mode := u.Query.Get("mode"); mode {
	case "":
		if len(u.Hosts) > 1 {
			return nil, bad("%d hosts given: a Redis URL names one primary; for Redlock over independent primaries add ?mode=redlock", len(u.Hosts))
		}
	case "redlock":
		return nil, fmt.Errorf("redis: mode=redlock over %d host(s) is not supported yet: %w", len(u.Hosts), coord.ErrUnsupported)
	default:
		return nil, bad("mode %q is not known (the only mode is redlock)", mode)
	}
	db := 0
	if u.Path != "" {
		n, err := strconv.Atoi(u.Path)
		if err != nil || n < 0 {
			return nil, bad("path %q must be a database number (e.g. /0)", u.Path)
		}
		db = n
	}
	ro := &redis.Options{
		Addr:                  u.Hosts[0],
		Username:              u.User,
		Password:              u.Password,
		DB:                    db,
		DialTimeout:           o.DialTimeout,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	}
	if u.TLS() {
		tc, err := tlsConfig(u, o)
		if err != nil {
			return nil, err
		}
		ro.TLSConfig = tc
	} else {
		for _, k := range []string{"ca", "cert", "key"} {
			if u.Query.Has(k) {
				return nil, bad("parameter %s needs TLS: use rediss://", k)
			}
		}
	}
	return ro, nil
}

// tlsConfig returns o.TLS when set, else a configuration verifying the server
// against ?ca= (or the system roots) and presenting ?cert=&key= when given.
func tlsConfig(u *coord.URL, o coord.Options) (*tls.Config, error) {
	if o.TLS != nil {
		return o.TLS.Clone(), nil
	}
	host := u.Hosts[0]
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if ca := u.Query.Get("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %v", coord.ErrInvalidURL, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca: no PEM certificate in %s", coord.ErrInvalidURL, ca)
		}
		tc.RootCAs = pool
	}
	cert, key := u.Query.Get("cert"), u.Query.Get("key")
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: cert/key: %v", coord.ErrInvalidURL, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, fmt.Errorf("%w: cert and key must be given together", coord.ErrInvalidURL)
	}
	return tc, nil
}
