package etcdcoord

import (
	"crypto/rand"
	"encoding/hex"
)

// Contender keys are reused. etcd keeps an index entry for every key name
// ever written until the next compaction, and the queue reads of Lock scan
// the lock's whole prefix, so a fresh name per Lock call would make every
// Lock slower than the last between compactions. A session therefore keeps
// the names of its released keys and gives them to its next Lock calls on
// the same name.
//
// Reuse is safe: a name goes back to the pool only once the server confirmed
// its delete, and is then taken by one Lock call at a time, so no two live
// contenders ever share a key; every incarnation of a key has a new create
// revision (its token), and waiters identify their predecessor by create
// revision, never by name alone.
const (
	spareKeysPerLock = 4   // spare names kept per lock name
	spareLocks       = 128 // lock names a session keeps spare names for
)

// takeKey returns a contender key under pfx that no live contender uses: a
// spare one, or a new <lease>-<nonce> name.
func (s *session) takeKey(pfx string) string {
	s.keysMu.Lock()
	if keys := s.spare[pfx]; len(keys) > 0 {
		k := keys[len(keys)-1]
		if len(keys) == 1 {
			delete(s.spare, pfx)
		} else {
			s.spare[pfx] = keys[:len(keys)-1]
		}
		s.keysMu.Unlock()
		return k
	}
	s.keysMu.Unlock()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return pfx + s.hex + "-" + hex.EncodeToString(nonce[:])
}

// putBack returns key, whose delete the server confirmed, to the pool of
// pfx. When the pool is full, the name is simply dropped.
func (s *session) putBack(pfx, key string) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.spare == nil {
		s.spare = map[string][]string{}
	}
	keys, ok := s.spare[pfx]
	if !ok && len(s.spare) >= spareLocks {
		for p := range s.spare { // drop an arbitrary lock name's spares
			delete(s.spare, p)
			break
		}
	}
	if len(keys) < spareKeysPerLock {
		s.spare[pfx] = append(keys, key)
	}
}
