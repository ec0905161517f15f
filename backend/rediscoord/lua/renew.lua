-- renew: extend the session key and every lock it holds by TTL, and drop the
-- entries of Lock calls whose own clean-up failed (see drop_entry).
-- KEYS[1] session key, KEYS[2] session's owned set
-- ARGV[1] SID, ARGV[2] TTL ms, ARGV[3] session key prefix,
-- ARGV[4], ARGV[5], ...: pairs WID, BASE of abandoned Lock calls
-- Returns {0} when the session key is gone (the session expired), else
-- {1, WID...} listing the session's locks that are no longer its own.
local skey, owned = KEYS[1], KEYS[2]
local sid, ttl, sprefix = ARGV[1], ARGV[2], ARGV[3]
if redis.call('PEXPIRE', skey, ttl) == 0 then
  return {0}
end
for i = 4, #ARGV - 1, 2 do
  drop_entry(ARGV[i + 1], sid .. ':' .. ARGV[i], ARGV[i], owned, sprefix)
end
local out = {1}
for _, m in ipairs(redis.call('SMEMBERS', owned)) do
  local kind, wid, base = string.match(m, '^(%a) (%x+) (.+)$')
  if kind == 'h' then
    if redis.call('GET', base) == sid .. ':' .. wid then
      redis.call('PEXPIRE', base, ttl)
    else
      redis.call('SREM', owned, m)
      table.insert(out, wid)
    end
  elseif kind == 'w' then
    if not redis.call('LPOS', base .. ':waiters', sid .. ':' .. wid) then
      redis.call('SREM', owned, m)
    end
  else
    redis.call('SREM', owned, m)
  end
end
redis.call('PEXPIRE', owned, ttl)
return out
