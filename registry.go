package coord

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/coordkit/coord/driver"
)

// Opener opens a backend client for a parsed URL. It must fail within ctx's
// deadline (the dial timeout) when the server does not answer, and its errors
// must not contain the URL's secrets.
type Opener func(ctx context.Context, u *URL, o Options) (driver.Client, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes a backend available to Open under the given URL schemes.
// Backend packages call it from init; importing
// github.com/coordkit/coord/backend/all registers every built-in backend.
func Register(opener Opener, schemes ...string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, s := range schemes {
		registry[strings.ToLower(s)] = opener
	}
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func lookup(scheme string) (Opener, error) {
	registryMu.RLock()
	op, ok := registry[scheme]
	registryMu.RUnlock()
	if ok {
		return op, nil
	}
	known := Schemes()
	if len(known) == 0 {
		return nil, fmt.Errorf("%w %q: no backend is registered; import github.com/coordkit/coord/backend/all (or one backend package)", ErrUnknownScheme, scheme)
	}
	return nil, fmt.Errorf("%w %q: known schemes are %s", ErrUnknownScheme, scheme, strings.Join(known, ", "))
}
