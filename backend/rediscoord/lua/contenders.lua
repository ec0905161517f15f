-- contenders: the number of contender entries of lock BASE: its holder (if
-- any) plus every queued waiter, live or not yet pruned.
-- KEYS[1] BASE
return redis.call('EXISTS', KEYS[1]) + redis.call('LLEN', KEYS[1] .. ':waiters')
