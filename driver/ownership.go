package driver

import "sync"

// Ownership is the close-once end signal a backend's Held implementation
// embeds: Done closes exactly once, and Err reports why.
type Ownership struct {
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// NewOwnership returns a live ownership.
func NewOwnership() *Ownership { return &Ownership{done: make(chan struct{})} }

// Done is closed when the ownership ends.
func (o *Ownership) Done() <-chan struct{} { return o.done }

// Err is nil while the ownership is live, then the error given to End.
func (o *Ownership) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// End ends the ownership with err (which must not be nil). Only the first call
// has an effect; it reports whether this call was the one that ended it.
func (o *Ownership) End(err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return false
	}
	o.err = err
	close(o.done)
	return true
}

// Live reports whether the ownership has not ended.
func (o *Ownership) Live() bool { return o.Err() == nil }
