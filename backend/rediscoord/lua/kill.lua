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
    drop_entry(base, sid .. ':' .. wid, wid, owned, sprefix)
  end
end
redis.call('DEL', owned)
return existed
