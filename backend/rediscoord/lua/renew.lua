-- renew: extend the session key, its locks and barriers by TTL, and drop
-- what calls whose own clean-up failed left behind (see drop_owned).
-- KEYS[1] session key, KEYS[2] session's owned set
-- ARGV[1] SID, ARGV[2] TTL ms, ARGV[3] session key prefix,
-- ARGV[4], ARGV[5], ...: owned-set members of abandoned calls
-- Returns {0} when the session key is gone (the session expired), else
-- {1, WID...} listing the session's holdings that are no longer its own.
local skey, owned = KEYS[1], KEYS[2]
local sid, ttl, sprefix = ARGV[1], ARGV[2], ARGV[3]
if redis.call('PEXPIRE', skey, ttl) == 0 then
  return {0}
end
for i = 4, #ARGV do
  drop_owned(ARGV[i], sid, owned, sprefix)
end
local out = {1}
for _, m in ipairs(redis.call('SMEMBERS', owned)) do
  local kind, wid, base = string.match(m, '^(%a) (%x+) (.+)$')
  local entry = sid .. ':' .. (wid or '')
  if kind == 'h' then
    if redis.call('GET', base) == entry then
      redis.call('PEXPIRE', base, ttl)
    else
      redis.call('SREM', owned, m)
      table.insert(out, wid)
    end
  elseif kind == 'w' then
    if not redis.call('LPOS', base .. ':waiters', entry) then
      redis.call('SREM', owned, m)
    end
  elseif kind == 'e' or kind == 'r' or kind == 's' then
    if not redis.call('ZSCORE', base .. ':q', entry) then
      redis.call('SREM', owned, m)
      table.insert(out, wid)
    end
  elseif kind == 'b' then
    if redis.call('GET', base) == entry then
      redis.call('PEXPIRE', base, ttl)
    else
      redis.call('SREM', owned, m)
    end
  elseif kind == 'd' then
    if redis.call('HGET', base .. ':p', wid) ~= sid then
      redis.call('SREM', owned, m)
    end
  else
    redis.call('SREM', owned, m)
  end
end
redis.call('PEXPIRE', owned, ttl)
return out
