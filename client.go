// Package coord is the core of the coord toolkit: a Client connected to one
// backend (etcd, ZooKeeper, Redis or Consul), Sessions that own locks,
// leaderships and claims, fencing Tokens, URL parsing and the sentinel errors.
//
// Recipes live in the recipes/ packages and take a *Session:
//
//	c, err := coord.Open(ctx, "etcd://127.0.0.1:2379")
//	s, err := c.NewSession(ctx)
//	m, err := lock.NewMutex(s, "reports")
//	g, err := m.Lock(ctx)
//	defer g.Unlock(ctx)
//
// A backend registers its URL schemes with Register; import
// github.com/coordkit/coord/backend/all for every built-in backend, or build a
// Client over a native client you already have with the backend package's New.
package coord

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coord/driver"
)

// Client is a connection to one backend, shared by the sessions opened from
// it. It is safe for concurrent use.
type Client struct {
	drv  driver.Client
	opts Options
	desc string
}

// NewClient wraps a backend driver. Backend packages' typed constructors call
// it; users normally call Open or a backend's New.
func NewClient(d driver.Client, desc string, opts ...Option) *Client {
	return &Client{drv: d, opts: ResolveOptions(opts...), desc: desc}
}

// Open connects to the backend named by rawURL (see URL for the forms). It
// fails with an error naming the URL (secrets redacted) when the URL is
// malformed (ErrInvalidURL), its scheme is not registered (ErrUnknownScheme)
// or the server does not answer within the dial timeout (ErrUnavailable). A
// URL asking for a mode the backend does not implement (e.g. Redis
// mode=redlock) fails with ErrUnsupported.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	o := ResolveOptions(opts...)
	if err := ValidateNamespace(o.Namespace); err != nil {
		return nil, err
	}
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	op, err := lookup(u.Scheme)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	d, err := op(dctx, u, o)
	if err != nil {
		rerr := &redactedError{msg: u.RedactString(err.Error()), err: err}
		if ctx.Err() == nil && dctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("coord: open %s: no answer within the dial timeout (%s): %w: %w", u.Redacted(), o.DialTimeout, rerr, ErrUnavailable)
		}
		return nil, fmt.Errorf("coord: open %s: %w", u.Redacted(), rerr)
	}
	return &Client{drv: d, opts: o, desc: u.Redacted()}, nil
}

// redactedError carries a backend's error with the URL's secrets removed
// from its text. It unwraps only to coord's sentinels and context errors, so
// the original text (which may quote a secret) cannot be reached through it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Unwrap() []error {
	var out []error
	for _, s := range []error{ErrInvalidURL, ErrUnavailable, ErrUnsupported, ErrInvalidName, ErrCorrupt,
		ErrSessionExpired, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(e.err, s) {
			out = append(out, s)
		}
	}
	return out
}

// Driver returns the backend driver, for recipe packages.
func (c *Client) Driver() driver.Client { return c.drv }

// Backend names the backend: "etcd", "zookeeper", "redis" or "consul".
func (c *Client) Backend() string { return c.drv.Backend() }

// Namespace returns the namespace the client's keys live under.
func (c *Client) Namespace() string { return c.opts.Namespace }

// String describes the client by its backend URL, secrets redacted.
func (c *Client) String() string { return c.desc }

// NewSession starts a session kept alive in the background (see Session).
func (c *Client) NewSession(ctx context.Context, opts ...SessionOption) (*Session, error) {
	so := sessionOptions{ttl: c.opts.TTL}
	for _, f := range opts {
		if f != nil {
			f(&so)
		}
	}
	if so.ttl <= 0 {
		so.ttl = c.opts.TTL
	}
	ds, err := c.drv.NewSession(ctx, driver.SessionConfig{TTL: so.ttl, LockDelay: so.lockDelay})
	if err != nil {
		return nil, fmt.Errorf("coord: new session on %s: %w", c.desc, err)
	}
	return &Session{c: c, d: ds}, nil
}

// Close closes the client. Sessions opened from it should be closed first.
// A native client passed to a backend's New is not closed.
func (c *Client) Close() error { return c.drv.Close() }
