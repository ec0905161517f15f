package coord

import (
	"crypto/tls"
	"time"
)

// Defaults used when an option is not given.
const (
	DefaultNamespace   = "coord"
	DefaultTTL         = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
)

// Options is the resolved client configuration handed to a backend opener.
type Options struct {
	// Namespace prefixes every key coord writes, so several applications can
	// share a cluster. Default "coord".
	Namespace string
	// DialTimeout bounds connecting and the first round trip. Default 5s.
	DialTimeout time.Duration
	// TTL is the default session TTL. Default 10s.
	TTL time.Duration
	// TLS overrides the TLS configuration built from the URL (?ca=&cert=&key=).
	TLS *tls.Config
}

// Option configures a Client.
type Option func(*Options)

// WithNamespace sets the namespace every key lives under.
func WithNamespace(ns string) Option { return func(o *Options) { o.Namespace = ns } }

// WithDialTimeout bounds how long Open waits for the backend to answer.
func WithDialTimeout(d time.Duration) Option { return func(o *Options) { o.DialTimeout = d } }

// WithTTL sets the default TTL of sessions opened by the client.
func WithTTL(d time.Duration) Option { return func(o *Options) { o.TTL = d } }

// WithTLS sets the TLS configuration, overriding what the URL says.
func WithTLS(c *tls.Config) Option { return func(o *Options) { o.TLS = c } }

// ResolveOptions applies opts over the defaults. Backends' typed constructors
// use it.
func ResolveOptions(opts ...Option) Options {
	o := Options{Namespace: DefaultNamespace, DialTimeout: DefaultDialTimeout, TTL: DefaultTTL}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return o
}

// SessionOption configures one session.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	ttl       time.Duration
	lockDelay time.Duration
}

// SessionTTL sets the session's TTL, overriding the client's default. Backends
// may round it up to their minimum (Consul: 10s).
func SessionTTL(d time.Duration) SessionOption { return func(o *sessionOptions) { o.ttl = d } }

// SessionLockDelay sets Consul's lock-delay for the session: after the session
// is invalidated, the locks it held stay unacquirable for this long. coord's
// default is 0 (fencing tokens are the safety net); Consul's own default is 15s.
// Other backends ignore it.
func SessionLockDelay(d time.Duration) SessionOption {
	return func(o *sessionOptions) { o.lockDelay = d }
}
