package zkcoord

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

func init() { coord.Register(open, "zk", "zks") }

// tlsParams are the query parameters zks:// accepts (file paths).
var tlsParams = map[string]bool{"ca": true, "cert": true, "key": true}

// open is the coord.Opener of zk:// and zks:// URLs:
//
//	zk://[user:pass@]h1:2181[,h2:2181…][/chroot]
//	zks://…?ca=CA.pem&cert=CERT.pem&key=KEY.pem   (TLS; coord.WithTLS overrides)
//
// user:pass is added to every connection as ZooKeeper digest credentials, and
// the nodes coord creates then carry the creator-only ACL (auth scheme). The
// chroot is created when missing. Open keeps one connection for client-level
// calls and verifies with it that a server grants a session within ctx.
func open(ctx context.Context, u *coord.URL, o coord.Options) (driver.Client, error) {
	c, err := configure(u, o)
	if err != nil {
		return nil, err
	}
	conn, _, _, err := c.dial(ctx, o.TTL)
	if err != nil {
		return nil, err
	}
	if err := within(ctx, func() error { return ensurePath(conn, c.root, c.acl) }); err != nil {
		conn.Close()
		return nil, fmt.Errorf("zkcoord: namespace %s: %w", c.root, err)
	}
	c.conn = conn
	return c, nil
}

// configure builds an unconnected client from a URL.
func configure(u *coord.URL, o coord.Options) (*client, error) {
	if err := validChroot(u.Path); err != nil {
		return nil, fmt.Errorf("%w: chroot /%s: %v", coord.ErrInvalidURL, u.Path, err)
	}
	var unknown []string
	for k := range u.Query {
		if !(u.TLS() && tlsParams[k]) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: unknown parameter(s) %s (zk:// takes none; zks:// takes ca, cert, key)",
			coord.ErrInvalidURL, strings.Join(unknown, ", "))
	}
	c := &client{
		opts:    o,
		owned:   true,
		servers: append([]string(nil), u.Hosts...),
		desc:    u.Redacted(),
		acl:     zk.WorldACL(zk.PermAll),
	}
	if u.Path != "" {
		c.root = "/" + u.Path
	}
	c.root += "/" + o.Namespace
	if u.User != "" || u.HasPassword {
		c.auth = []byte(u.User + ":" + u.Password)
		c.acl = zk.AuthACL(zk.PermAll)
	}
	if u.TLS() {
		tc, err := tlsConfig(u, o)
		if err != nil {
			return nil, err
		}
		c.tls = tc
	}
	return c, nil
}

// dial opens a connection with its own ZooKeeper session (timeout ttl) and
// waits within ctx until a server grants it and the credentials are added.
func (c *client) dial(ctx context.Context, ttl time.Duration) (*zk.Conn, *tracker, *watchdog, error) {
	tr := newTracker(c.tls)
	wd := newWatchdog(tr.Timeout, tr.lastHeard)
	cb := func(ev zk.Event) {
		if ev.Type == zk.EventSession {
			sid, _, _ := tr.session()
			wd.observe(ev.State, sid)
		}
	}
	// go-zookeeper resolves the host names once, in Connect: bound that by ctx.
	var hp []zk.DNSHostProviderOption
	if dl, ok := ctx.Deadline(); ok {
		hp = append(hp, zk.WithLookupTimeout(max(time.Until(dl), 10*time.Millisecond)))
	}
	conn, _, err := zk.Connect(c.servers, ttl,
		zk.WithHostProvider(zk.NewDNSHostProvider(hp...)),
		zk.WithDialer(tr.dial), zk.WithLogger(nopLogger{}), zk.WithLogInfo(false), zk.WithEventCallback(cb))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("zkcoord: connect to %s: %v: %w", strings.Join(c.servers, ","), err, coord.ErrUnavailable)
	}
	select {
	case <-wd.established:
	case <-ctx.Done():
		conn.Close()
		why := ""
		if err := tr.lastDialErr(); err != nil {
			why = fmt.Sprintf(" (last attempt: %v)", err)
		}
		return nil, nil, nil, fmt.Errorf("zkcoord: no ZooKeeper session from %s%s: %w: %w",
			strings.Join(c.servers, ","), why, ctx.Err(), coord.ErrUnavailable)
	}
	if c.auth != nil {
		if err := within(ctx, func() error { return conn.AddAuth("digest", c.auth) }); err != nil {
			conn.Close()
			return nil, nil, nil, fmt.Errorf("zkcoord: digest credentials on %s: %w: %w",
				strings.Join(c.servers, ","), err, coord.ErrUnavailable)
		}
	}
	return conn, tr, wd, nil
}

// within runs fn, a go-zookeeper call that ignores contexts, and returns
// ctx's error if ctx ends first (fn then finishes in the background; closing
// its connection makes it return).
func within(ctx context.Context, fn func() error) error {
	res := make(chan error, 1)
	go func() { res <- fn() }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func tlsConfig(u *coord.URL, o coord.Options) (*tls.Config, error) {
	if o.TLS != nil {
		return o.TLS.Clone(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := u.Query.Get("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %v", coord.ErrInvalidURL, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca %s: no PEM certificate", coord.ErrInvalidURL, ca)
		}
		tc.RootCAs = pool
	}
	cert, key := u.Query.Get("cert"), u.Query.Get("key")
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%w: cert and key go together", coord.ErrInvalidURL)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: cert/key: %v", coord.ErrInvalidURL, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
