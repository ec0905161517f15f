-- release: delete BASE if OWNER holds it and wake the next live waiter.
-- KEYS[1] BASE, KEYS[2] session's owned set
-- ARGV[1] OWNER "SID:WID", ARGV[2] WID, ARGV[3] session key prefix
-- Returns 1 when released, 0 when OWNER did not hold BASE.
local base, owned = KEYS[1], KEYS[2]
local owner, wid, sprefix = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', owned, 'h ' .. wid .. ' ' .. base)
if redis.call('GET', base) ~= owner then
  return 0
end
redis.call('DEL', base)
wake_head(base, sprefix)
return 1
