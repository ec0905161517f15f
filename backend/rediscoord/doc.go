// Package rediscoord is coord's Redis backend: sessions kept alive by a
// client-side heartbeat; a fair (FIFO), herd-free lock with fencing tokens;
// leader election, read-write locks, semaphores and barriers — all state
// changes done by Lua scripts on one Redis primary.
//
// Open a client from a URL (import this package for its side effect, or
// github.com/coordkit/coord/backend/all):
//
//	redis://[user:pass@]host:6379[/db]
//	rediss://[user:pass@]host:6379[/db]?ca=ca.pem&cert=client.pem&key=client-key.pem
//
// or wrap a *redis.Client you already have with New.
//
// Sessions: a session is a key NS:session:ID with a PX TTL that a background
// heartbeat renews every TTL/3, together with every lock the session holds.
// The session is lost when the key is gone (the server expired it, or
// ExpireSession deleted it), or when no renewal succeeded for 9/10 of the
// TTL — before the server can expire anything the session owns.
//
// Locks: the lock NS:lock:{NAME} holds its owner, with a PX TTL renewed by the
// heartbeat; an acquisition increments the fencing counter NS:lock:{NAME}:fence
// in the same script and returns it as the token. Waiters queue in
// NS:lock:{NAME}:waiters (FIFO); a release wakes only the first live waiter by
// pushing to that waiter's own list, on which it blocks with BLPOP. A waiter
// also re-checks when the holder's key would expire (the holder may have died)
// or after one TTL at most: a safety net, not the normal wake-up path.
//
// Election, read-write lock, semaphore: each name has a queue, the sorted
// set NS:election:{NAME}:q (or :rwlock:, :sem:) of entries "SID:WID", one per
// call, scored by a per-name counter that is also the token. An entry lives
// as long as its session key. The leader is the first entry; a writer holds
// when first, a reader when no writer is ahead of it; a semaphore entry
// holds when among the first limit. Every script that removes an entry
// (release, resign, cancel, session close or loss, pruning of a dead
// session's entry) wakes exactly the entries that waited on it, by pushing to
// their own lists (BLPOP). Waiters re-check on their own only when a session
// ahead of them could have expired unnoticed (within one TTL): a safety net,
// not the normal path. Election observers subscribe to the pub/sub channel
// NS:election:{NAME}:ch (published by every script that changes the leader
// or its value) before they read, and read again on every message and after
// every re-subscription.
//
// Barriers: NS:barrier:{NAME} holds its holder (PX renewed by the heartbeat);
// waiters subscribe to its channel, then check. Double barriers keep their
// participants in the hash NS:dbarrier:{NAME}:p (live while their sessions
// are) and a ready marker; the script that sees n participants raises it,
// the one that sees none left lowers it, each publishing on the channel.
//
// Everything a session owns is listed in its set NS:session:ID:owned, so
// that the heartbeat renews it and closing (or losing) the session removes
// it at once, waking its waiters.
//
// Everything lives under the client's namespace NS (default "coord"). A lock
// name is wrapped in braces, so names containing ':' never collide with
// another lock's keys. Fencing counters are kept forever (one small key per
// lock name ever used), so tokens keep increasing across idle periods.
// Requires Redis 6.0.6 or later (LPOS, fractional BLPOP timeouts).
//
// Limits: a Redis lock lives on one primary. Redis replicates asynchronously,
// so a failover (Sentinel, or a manual promotion) can lose a held lock and
// move the fencing counter back: two holders may then overlap and a token may
// repeat. Use the fencing token with a resource that rejects stale tokens.
// Redis Cluster and Ring clients are not supported (the scripts touch keys of
// several locks and sessions at once). Redlock over several independent
// primaries (redis://h1,h2,h3?mode=redlock) is not implemented yet.
package rediscoord
