-- cancel: remove every trace of OWNER's Lock call on BASE (held lock, place in
-- line, wake-up list) and, when the lock is free, pass the turn on to the next
-- live waiter (OWNER may have consumed the wake-up meant for the head).
-- KEYS[1] BASE, KEYS[2] session's owned set
-- ARGV[1] OWNER "SID:WID", ARGV[2] WID, ARGV[3] session key prefix
-- Returns 1 when OWNER held the lock (and released it now), else 0.
local base, owned = KEYS[1], KEYS[2]
local owner, wid, sprefix = ARGV[1], ARGV[2], ARGV[3]
local held = 0
if redis.call('GET', base) == owner then
  redis.call('DEL', base)
  held = 1
end
redis.call('LREM', base .. ':waiters', 0, owner)
redis.call('DEL', base .. ':wake:' .. wid)
redis.call('SREM', owned, 'w ' .. wid .. ' ' .. base, 'h ' .. wid .. ' ' .. base)
if redis.call('EXISTS', base) == 0 then
  wake_head(base, sprefix)
end
return held
