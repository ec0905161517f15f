package consulcoord

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

func init() { coord.Register(open, "consul", "consuls") }

// urlParams are the query parameters a consul:// URL accepts.
var urlParams = map[string]bool{"token": true, "dc": true, "ca": true, "cert": true, "key": true}

// urlConfig is what a consul:// URL says, before any I/O.
type urlConfig struct {
	Address    string // host:port of the agent's HTTP API
	Scheme     string // "http" or "https"
	Token      string // ACL token: ?token=, else $CONSUL_HTTP_TOKEN
	Datacenter string // ?dc=
	Path       string // KV prefix above the namespace ("" for the KV root)
	CAFile     string // ?ca=
	CertFile   string // ?cert=
	KeyFile    string // ?key=
	User       string // HTTP basic auth from the URL's userinfo
	Password   string
	HasAuth    bool
}

// parseConfig turns a parsed URL into a urlConfig. Its errors wrap
// coord.ErrInvalidURL and never quote the token or password.
func parseConfig(u *coord.URL) (urlConfig, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", coord.ErrInvalidURL, u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.Backend() != "consul" {
		return urlConfig{}, bad("scheme %q is not consul:// or consuls://", u.Scheme)
	}
	if len(u.Hosts) != 1 {
		return urlConfig{}, bad("a consul URL names one agent (got %d hosts); point it at the local agent or a load balancer", len(u.Hosts))
	}
	var unknown []string
	for k, vs := range u.Query {
		if !urlParams[k] {
			unknown = append(unknown, k)
		}
		if len(vs) > 1 {
			return urlConfig{}, bad("parameter %q is given %d times", k, len(vs))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return urlConfig{}, bad("unknown parameter(s) %s (known: token, dc, ca, cert, key)", strings.Join(unknown, ", "))
	}
	c := urlConfig{
		Address:    u.Hosts[0],
		Scheme:     "http",
		Token:      u.Query.Get("token"),
		Datacenter: u.Query.Get("dc"),
		Path:       u.Path,
		CAFile:     u.Query.Get("ca"),
		CertFile:   u.Query.Get("cert"),
		KeyFile:    u.Query.Get("key"),
		User:       u.User,
		Password:   u.Password,
		HasAuth:    u.User != "" || u.HasPassword,
	}
	if c.Token == "" {
		c.Token = os.Getenv("CONSUL_HTTP_TOKEN")
	}
	if u.TLS() {
		c.Scheme = "https"
	} else if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		return urlConfig{}, bad("ca, cert and key need TLS: use consuls://")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return urlConfig{}, bad("cert and key go together")
	}
	if c.Path != "" {
		if err := coord.ValidateName(c.Path); err != nil {
			return urlConfig{}, bad("KV prefix: %v", err)
		}
	}
	return c, nil
}

// newTransport returns a pooled HTTP transport sized for blocking queries
// (each waiting Lock and each session holds one long-poll connection).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// open is the coord.Opener for consul:// and consuls://. It checks within
// ctx that the agent answers and knows a leader, and that the token may read
// coord's prefix.
func open(ctx context.Context, u *coord.URL, o coord.Options) (driver.Client, error) {
	uc, err := parseConfig(u)
	if err != nil {
		return nil, err
	}
	tr := newTransport()
	if o.TLS != nil {
		tr.TLSClientConfig = o.TLS.Clone()
	}
	cfg := &api.Config{
		Address:    uc.Address,
		Scheme:     uc.Scheme,
		Datacenter: uc.Datacenter,
		Token:      uc.Token,
		Transport:  tr,
		TLSConfig: api.TLSConfig{
			Address:  uc.Address,
			CAFile:   uc.CAFile,
			CertFile: uc.CertFile,
			KeyFile:  uc.KeyFile,
		},
	}
	if uc.HasAuth {
		cfg.HttpAuth = &api.HttpBasicAuth{Username: uc.User, Password: uc.Password}
	}
	cli, err := api.NewClient(cfg)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("%w %s: %s", coord.ErrInvalidURL, u.Redacted(), u.RedactString(err.Error()))
	}
	d := newClient(cli, o, uc.Path, uc.Scheme+"://"+uc.Address, tr)
	if err := d.ping(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// ping checks that the agent answers, that its cluster has a leader, and that
// the ACL token is known (a KV read of coord's prefix), so a wrong token shows
// up at Open. A valid token that lacks permissions (session:write,
// key_prefix:write on the prefix) fails the first session or lock instead.
func (c *client) ping(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	leader, err := c.cli.Status().LeaderWithQueryOptions(q)
	if err != nil {
		return c.failed("status/leader", err)
	}
	if leader == "" {
		return fmt.Errorf("consul %s: the cluster has no leader: %w", c.desc, coord.ErrUnavailable)
	}
	if _, _, err := c.cli.KV().Keys(c.root+"/", "/", q); err != nil {
		return c.failed("read "+c.root+"/", err)
	}
	return nil
}
