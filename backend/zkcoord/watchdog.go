package zkcoord

import (
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coord"
	"github.com/go-zookeeper/zk"
)

// watchdog decides when one ZooKeeper session is lost, from the connection's
// state changes: when the server reports it expired (StateExpired), when the
// connection comes back with a different session, or when no server has
// answered for the whole session timeout (a client-side deadline, as Curator
// does: by then the server has expired the session or is about to).
//
// go-zookeeper on its own never gives up: it reconnects forever and, after an
// expiry, silently opens a new session. The watchdog is what turns that into a
// loss coord's users can see.
type watchdog struct {
	timeout   func() time.Duration
	lastHeard func() time.Time // nil: measure from the disconnection

	mu          sync.Mutex
	sid         int64
	connected   bool
	timer       *time.Timer
	established chan struct{} // closed on the first session
	done        chan struct{} // closed on loss (or stop)
	err         error
}

func newWatchdog(timeout func() time.Duration, lastHeard func() time.Time) *watchdog {
	return &watchdog{
		timeout:     timeout,
		lastHeard:   lastHeard,
		established: make(chan struct{}),
		done:        make(chan struct{}),
	}
}

// adopt makes a watchdog for a session that is already established.
func adopt(sid int64, timeout func() time.Duration) *watchdog {
	w := newWatchdog(timeout, nil)
	w.sid, w.connected = sid, true
	close(w.established)
	return w
}

// Done is closed when the session is lost.
func (w *watchdog) Done() <-chan struct{} { return w.done }

// Err wraps coord.ErrSessionExpired once the session is lost.
func (w *watchdog) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// SessionID is the guarded session's ID (0 before it is established).
func (w *watchdog) SessionID() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sid
}

// observe feeds a session state change; it never blocks.
func (w *watchdog) observe(state zk.State, sid int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	switch state {
	case zk.StateHasSession:
		if w.sid == 0 {
			w.sid = sid
			close(w.established)
		} else if sid != w.sid {
			w.loseLocked(fmt.Errorf("%w: ZooKeeper session %#x was replaced by %#x", coord.ErrSessionExpired, w.sid, sid))
			return
		}
		w.connected = true
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
	case zk.StateExpired:
		w.loseLocked(fmt.Errorf("%w: ZooKeeper expired session %#x", coord.ErrSessionExpired, w.sid))
	case zk.StateDisconnected, zk.StateConnecting, zk.StateConnected:
		if w.sid == 0 || !w.connected {
			return
		}
		w.connected = false
		timeout := w.timeout()
		ref := time.Now()
		if w.lastHeard != nil {
			ref = w.lastHeard()
		}
		wait := time.Until(ref.Add(timeout))
		w.timer = time.AfterFunc(wait, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if !w.connected && w.err == nil {
				w.loseLocked(fmt.Errorf("%w: no answer from ZooKeeper within the session timeout (%s); session %#x presumed expired",
					coord.ErrSessionExpired, timeout, w.sid))
			}
		})
	}
}

// lose ends the session with err (if it has not ended yet).
func (w *watchdog) lose(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.loseLocked(err)
	}
}

func (w *watchdog) loseLocked(err error) {
	w.err = err
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	close(w.done)
}
