package main

import (
	"context"
	"errors"
	"time"

	"github.com/coordkit/coord"
)

const backendHint = "check --backend (or COORD_BACKEND) and that the server is running"

// open connects to the backend named by the global flags. Its errors name the
// URL with secrets redacted (coord.Open guarantees that) and decide the exit
// code: 2 for a malformed URL or unknown scheme, 1 when the server does not
// answer.
func (g globals) open(ctx context.Context) (*coord.Client, error) {
	c, err := coord.Open(ctx, g.backend,
		coord.WithNamespace(g.namespace),
		coord.WithDialTimeout(g.dialTimeout),
		coord.WithTTL(g.ttl))
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, coord.ErrInvalidURL), errors.Is(err, coord.ErrUnknownScheme):
		return nil, &exitErr{code: exitUsage, msg: "bad backend URL: " + err.Error(),
			hint: "use e.g. --backend " + coord.DefaultURL, err: err}
	default:
		return nil, fail(err, backendHint, "cannot connect to the backend")
	}
}

// newSession opens a session with the --ttl given.
func (g globals) newSession(ctx context.Context, c *coord.Client) (*coord.Session, error) {
	s, err := c.NewSession(ctx, coord.SessionTTL(g.ttl))
	if err != nil {
		return nil, fail(err, backendHint, "cannot start a session")
	}
	return s, nil
}

// cleanupCtx is a context for releasing server state after the command's own
// context may be done: it keeps ctx's values, not its cancellation, and is
// bounded by the dial timeout.
func (g globals) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := g.dialTimeout
	if d < time.Second {
		d = time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
