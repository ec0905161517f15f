// Package etcdcoord is coord's etcd backend.
//
// Open a client from a URL with coord.Open (importing this package registers
// the etcd and etcds schemes):
//
//	etcd://[user:pass@]h1:2379[,h2:2379…][/prefix]
//	etcds://h1:2379/prefix?ca=ca.pem&cert=client.pem&key=client-key.pem
//
// or wrap a clientv3.Client you already have with New. Every key lives under
// /<prefix>/<namespace>/ (or /<namespace>/ without a prefix).
//
// Sessions: a session is an etcd lease (TTL rounded up to whole seconds; etcd
// may raise it to its minimum) kept alive by clientv3's keep-alive stream.
// Everything a session owns is a key bound to that lease, so Close releases it
// all with one revoke, and the server deletes it all when the lease expires.
// The session is lost when etcd reports the lease gone or when no keep-alive
// response has arrived for a full TTL (a client-side deadline, so a client cut
// off from etcd gives up its locks on time even though no server tells it).
// A lease revoked or expired on the server is noticed within a round trip,
// through one watch per session on a marker key bound to the lease
// (<root>session/<lease>); every lock of the session ends with it at once.
// A held lock opens no watch of its own: a lock key deleted by hand while its
// session lives (outside the contract: that breaks the lock, and the next
// waiter proceeds) is noticed at Unlock, which then reports ErrNotHeld.
//
// Locks use etcd's native queue: each Lock call puts a key
// <root>lock/<name>/~/<lease>-<nonce> and waits for the key created just
// before its own (its predecessor) to disappear. Waiters are served in FIFO
// order and a release wakes exactly one of them. The uncontended lock costs
// one write (a bare put) and its Unlock one delete; a session reuses the names
// of its released keys, so a busy lock does not pile up dead key names in
// etcd's index between compactions. The fencing token is the create revision of the holder's
// key: it comes from etcd's replicated log, so it only grows, also across
// leader changes and restarts.
//
// Limits: as with every lease, a holder that stalls longer than its TTL (GC,
// SIGSTOP, a cut network) loses the lock while it may still be running; its
// guard reports the loss once the client-side deadline passes, and only the
// fencing token, checked by the protected resource, stops its late writes.
// The deadline counts from when a keep-alive response was received, so it
// can trail the server's expiry by that response's network delay (etcd only
// reaps expired leases every 500ms, which covers it in practice).
package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// client is the etcd driver.Client. It implements driver.Locker,
// driver.Inspector and driver.Expirer.
type client struct {
	cli       *clientv3.Client
	owned     bool   // the driver created cli (from a URL) and closes it
	root      string // "/<prefix>/<ns>/": every key lives under it
	endpoints string // for messages; never holds credentials
}

var (
	_ driver.Client    = (*client)(nil)
	_ driver.Locker    = (*client)(nil)
	_ driver.Inspector = (*client)(nil)
	_ driver.Expirer   = (*client)(nil)
)

// New returns a coord client over cli, the caller's own etcd client. Keys go
// under /<namespace>/ (coord.WithNamespace, default "coord"); to put them
// under a further prefix, open the client from a URL with a path instead.
// Closing the returned client does not close cli. New does no I/O: a server
// that cannot be reached shows up on the first session or recipe call.
func New(cli *clientv3.Client, opts ...coord.Option) (*coord.Client, error) {
	if cli == nil {
		return nil, errors.New("etcdcoord: New: nil *clientv3.Client")
	}
	o := coord.ResolveOptions(opts...)
	if err := coord.ValidateNamespace(o.Namespace); err != nil {
		return nil, fmt.Errorf("etcdcoord: %w", err)
	}
	d := &client{cli: cli, root: rootKey("", o.Namespace), endpoints: hostList(cli.Endpoints())}
	return coord.NewClient(d, "etcd://"+d.endpoints, opts...), nil
}

// Backend returns "etcd".
func (c *client) Backend() string { return "etcd" }

// Close closes the etcd client when the driver created it from a URL. Close
// sessions first: a session whose client is closed is lost.
func (c *client) Close() error {
	if !c.owned {
		return nil
	}
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcdcoord: close client of %s: %w", c.endpoints, err)
	}
	return nil
}

// rootKey is the key prefix every key of the client lives under.
func rootKey(path, ns string) string {
	if path == "" {
		return "/" + ns + "/"
	}
	return "/" + path + "/" + ns + "/"
}

// lockPrefix is the prefix of the contender keys of lock name. The "~"
// segment cannot occur in a valid name, so the prefix of lock "a" never
// covers the keys of lock "a/b".
func (c *client) lockPrefix(name string) string {
	return c.root + "lock/" + name + "/~/"
}

// hostList formats endpoints as "h1:p1,h2:p2", without URL schemes.
func hostList(eps []string) string {
	out := make([]string, len(eps))
	for i, e := range eps {
		if _, rest, ok := strings.Cut(e, "://"); ok {
			e = rest
		}
		out[i] = e
	}
	return strings.Join(out, ",")
}
