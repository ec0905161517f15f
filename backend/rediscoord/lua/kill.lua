-- kill: end session SID at once: delete its key, then remove everything it
-- owns (locks, waiters, candidacies, read-write lock and semaphore entries,
-- barriers, double-barrier participants), waking whoever waited on it.
-- KEYS[1] session key, KEYS[2] session's owned set
-- ARGV[1] SID, ARGV[2] session key prefix
-- Returns 1 when the session key existed, else 0.
local skey, owned = KEYS[1], KEYS[2]
local sid, sprefix = ARGV[1], ARGV[2]
local existed = redis.call('DEL', skey)
for _, m in ipairs(redis.call('SMEMBERS', owned)) do
  drop_owned(m, sid, owned, sprefix)
end
redis.call('DEL', owned)
return existed
