package rediscoord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/coordkit/coord"
	"github.com/redis/go-redis/v9"
)

// follow is the wait loop of the recipes that many callers watch together
// (election observers, barrier waiters, double-barrier participants). It
// subscribes to channel FIRST, and only once the server confirmed the
// subscription calls read; then it calls read again after every message on
// the channel, after every new subscription (a broken one is closed and
// made again, and its confirmation awaited), and when the wait that read returned has
// elapsed (a safety net for state that can change without a message: a
// session expiring on its own). So a change published after a read is never
// missed, and a change made while the subscription was down is seen by the
// read that follows the reconnect.
//
// follow returns nil when read reports done, read's error when it does not
// wrap coord.ErrUnavailable (those are retried with backoff), and a wrapped
// ctx.Err() when ctx is done. The subscription uses the client's private
// blocking pool and is closed as soon as ctx is done, which interrupts a
// receive in progress.
func (c *client) follow(ctx context.Context, channel string, read func(context.Context) (done bool, wait time.Duration, err error)) error {
	var ps *redis.PubSub
	stop := func() bool { return false }
	closeSub := func() {
		if ps != nil {
			stop()
			_ = ps.Close()
			ps = nil
		}
	}
	defer closeSub()
	confirmWait := max(c.opts.DialTimeout, time.Second)
	backoff := minBackoff
	pause := func() {
		t := time.NewTimer(backoff)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		backoff = min(2*backoff, maxBackoff)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redis %s: %w", channel, err)
		}
		if ps == nil {
			// A fresh subscription: its first reply is the confirmation.
			ps = c.blk.Subscribe(ctx, channel)
			sub := ps
			stop = context.AfterFunc(ctx, func() { _ = sub.Close() })
			if _, err := ps.ReceiveTimeout(ctx, confirmWait); err != nil {
				closeSub()
				if ctx.Err() == nil {
					pause()
				}
				continue
			}
		}
		done, wait, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			if !errors.Is(err, coord.ErrUnavailable) {
				return err
			}
			pause()
			continue
		}
		backoff = minBackoff
		if done {
			return nil
		}
		if wait <= 0 {
			wait = c.opts.TTL
		}
		if _, err := ps.ReceiveTimeout(ctx, wait); err != nil && !isTimeout(err) && ctx.Err() == nil {
			closeSub()
			pause()
		}
	}
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
