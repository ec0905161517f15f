-- kill: end session SID at once: delete its key, release its locks, remove
-- its waiters and wake the next live waiter of every lock it touched.
-- KEYS[1] session key, KEYS[2] session's owned set
-- ARGV[1] SID, ARGV[2] session key prefix
-- Returns 1 when the session key existed, else 0.
local skey, owned = KEYS[1], KEYS[2]
local sid, sprefix = ARGV[1], ARGV[2]
local existed = redis.call('DEL', skey)
for _, m in ipairs(redis.call('SMEMBERS', owned)) do
  local kind, wid, base = string.match(m, '^(%a) (%x+) (.+)$')
  if kind then
    local owner = sid .. ':' .. wid
    if kind == 'h' then
      if redis.call('GET', base) == owner then
        redis.call('DEL', base)
      end
    else
      redis.call('LREM', base .. ':waiters', 0, owner)
      redis.call('DEL', base .. ':wake:' .. wid)
    end
    if redis.call('EXISTS', base) == 0 then
      wake_head(base, sprefix)
    end
  end
end
redis.call('DEL', owned)
return existed
