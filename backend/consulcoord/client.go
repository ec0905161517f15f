// Package consulcoord is coord's Consul backend: sessions are Consul sessions
// with a TTL, locks are fair queues of session-acquired KV keys.
//
// Use coord.Open with a consul:// or consuls:// URL (this package registers
// both schemes when imported), or wrap an *api.Client you already have with
// New:
//
//	consul://127.0.0.1:8500/myapp?token=…&dc=dc1
//	consuls://consul.example:8501?ca=/etc/ca.pem&cert=/etc/c.pem&key=/etc/c.key
//
// Every key lives under "<path>/<namespace>/" (the URL path is optional; the
// namespace defaults to "coord"), e.g. "myapp/coord/lock/<name>/<session>-<nonce>".
//
// Guarantees and limits on Consul:
//   - A session is a Consul session with a TTL check only (no node or serf
//     checks), behavior "delete": when it ends, Consul deletes every key it
//     acquired. Consul's minimum TTL is 10s; shorter TTLs are rounded up and
//     the granted TTL is reported by the session.
//   - Consul itself invalidates a session only after up to twice its TTL
//     without renewal, while coord's client declares it lost after one TTL
//     without a successful renewal: a holder gives up before a successor can
//     get in, as long as clocks run at the same rate.
//   - Fencing tokens are Raft indexes (the CreateIndex of the holder's key):
//     strictly increasing per name, and they survive leader changes.
//   - Sessions prefer liveness over safety, like every lease: a holder paused
//     longer than its TTL keeps running after its lock passed on; only the
//     fencing token, checked by the protected resource, catches that.
//
// Other recipes use the lock's queue shape (one session-acquired key per
// call, ordered by CreateIndex, one /v1/txn request to queue and list,
// blocking queries on a single key to wait): elections under "election/",
// read-write locks under "rwlock/" (a reader waits for the nearest writer
// ahead, a writer for its predecessor), semaphores under "semaphore/" (the
// first waiter watches the queue, later ones their predecessor). Observers
// follow an election with blocking queries on its prefix. Barriers are
// session-acquired keys under "barrier-up/" (single) and "barrier/" plus
// "barrier-ready/" (double). Tokens of every recipe are CreateIndexes.
package consulcoord

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// client is the driver.Client for Consul. It also implements driver.Locker,
// driver.Elector, driver.RWLocker, driver.Semaphorer, driver.Barrierer,
// driver.Inspector and driver.Expirer.
type client struct {
	cli  *api.Client
	opts coord.Options
	// root is "<path>/<namespace>" (no leading or trailing '/').
	root string
	// desc names the agent in errors (never a token).
	desc string
	// transport is set when the driver built the native client from a URL:
	// Close then closes its idle connections. A user's client is left alone.
	transport *http.Transport
}

var (
	_ driver.Client    = (*client)(nil)
	_ driver.Locker    = (*client)(nil)
	_ driver.Inspector = (*client)(nil)
	_ driver.Expirer   = (*client)(nil)

	_ driver.Elector    = (*client)(nil)
	_ driver.RWLocker   = (*client)(nil)
	_ driver.Semaphorer = (*client)(nil)
	_ driver.Barrierer  = (*client)(nil)
)

// New returns a coord client over the caller's Consul API client. Keys live
// under "<namespace>/" at the root of the KV store (use a consul:// URL with
// a path for a deeper prefix). New does no I/O; the first session or lock
// reports an unreachable agent. Closing the returned client never closes or
// reconfigures cli.
func New(cli *api.Client, opts ...coord.Option) (*coord.Client, error) {
	if cli == nil {
		return nil, errors.New("consulcoord: nil *api.Client")
	}
	o := coord.ResolveOptions(opts...)
	if err := coord.ValidateNamespace(o.Namespace); err != nil {
		return nil, fmt.Errorf("consulcoord: %w", err)
	}
	d := newClient(cli, o, "", "consul agent", nil)
	return coord.NewClient(d, "consul (native client)", opts...), nil
}

func newClient(cli *api.Client, o coord.Options, path, desc string, tr *http.Transport) *client {
	root := o.Namespace
	if path = strings.Trim(path, "/"); path != "" {
		root = path + "/" + o.Namespace
	}
	return &client{cli: cli, opts: o, root: root, desc: desc, transport: tr}
}

// Backend returns "consul".
func (c *client) Backend() string { return "consul" }

// Close releases the idle HTTP connections of a client the driver created
// from a URL. It never touches a native client passed to New. Sessions should
// be closed first; Close does not end them.
func (c *client) Close() error {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// recipePrefix is the KV prefix holding the entries of one recipe instance,
// with a trailing '/': "<root>/<recipe>/<name>/".
func (c *client) recipePrefix(recipe, name string) string {
	return c.root + "/" + recipe + "/" + name + "/"
}

// directChildren keeps the pairs whose key is directly under prefix: a name
// may contain '/', so the prefix of lock "a" also covers lock "a/b"'s keys.
func directChildren(prefix string, pairs []*api.KVPair) []*api.KVPair {
	out := pairs[:0:0]
	for _, p := range pairs {
		if p == nil || !strings.HasPrefix(p.Key, prefix) {
			continue
		}
		rest := p.Key[len(prefix):]
		if rest == "" || strings.Contains(rest, "/") {
			continue
		}
		out = append(out, p)
	}
	return out
}

// failed wraps a native error, naming the agent and the operation. Transport
// errors and server-side failures (5xx, 429) wrap coord.ErrUnavailable;
// a refusal (403 permission denied, 400 bad request, ...) does not, since
// retrying will not help.
func (c *client) failed(op string, err error) error {
	if refused(err) {
		return fmt.Errorf("consul %s: %s: %w", c.desc, op, err)
	}
	return fmt.Errorf("consul %s: %s: %w: %w", c.desc, op, coord.ErrUnavailable, err)
}

// refused reports whether err is the agent refusing a request (403, 400,
// ...) rather than a transport or server-side failure that a retry may fix.
func refused(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusTooManyRequests
}
