package election

import (
	"context"
	"fmt"
	"sync"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
)

// Observer follows an election's leader with latest-value semantics: C
// delivers the current leader first (a Leader with Elected() false when
// there is none) and then each change. A slow reader may skip intermediate
// states but never sees an older term after a newer one, and once changes
// stop the last value delivered is the current one.
type Observer struct {
	ch     chan Leader
	done   chan struct{}
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

// Observe starts an Observer of election name on client c; it needs no
// session. It stops when ctx is done or Stop is called.
func Observe(ctx context.Context, c *coord.Client, name string) (*Observer, error) {
	e, err := elector(c, name)
	if err != nil {
		return nil, err
	}
	return observe(ctx, e, name), nil
}

func observe(ctx context.Context, e driver.Elector, name string) *Observer {
	ctx, cancel := context.WithCancel(ctx)
	o := &Observer{ch: make(chan Leader, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(o.done)
		var last uint64
		err := e.Observe(ctx, name, func(li driver.LeaderInfo) {
			if li.Token != 0 && li.Token < last {
				return // an older term reported late: never go back
			}
			if li.Token != 0 {
				last = li.Token
			}
			o.offer(Leader{Name: name, Token: coord.Token(li.Token), Value: li.Value})
		})
		o.mu.Lock()
		o.err = fmt.Errorf("election %q: observe: %w", name, err)
		o.mu.Unlock()
	}()
	return o
}

// offer replaces any undelivered value with l (one producer, so this never
// blocks).
func (o *Observer) offer(l Leader) {
	for {
		select {
		case o.ch <- l:
			return
		default:
		}
		select {
		case <-o.ch:
		default:
		}
	}
}

// C delivers leader changes. It is never closed; select on Done as well.
func (o *Observer) C() <-chan Leader { return o.ch }

// Done is closed when the observer has stopped.
func (o *Observer) Done() <-chan struct{} { return o.done }

// Err says why the observer stopped (nil while it runs).
func (o *Observer) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Stop stops the observer and waits until it has.
func (o *Observer) Stop() {
	o.cancel()
	<-o.done
}
