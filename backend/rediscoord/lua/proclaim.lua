-- proclaim: set the value of candidacy ENTRY if it is still queued and leads.
-- KEYS[1] QBASE; ARGV[1] ENTRY, ARGV[2] value
-- Returns 1 when set, else 0.
local base, entry = KEYS[1], ARGV[1]
if redis.call('ZRANK', base .. ':q', entry) ~= 0 then
  return 0
end
redis.call('HSET', base .. ':info', entry, ARGV[2])
redis.call('PUBLISH', base .. ':ch', 'value')
return 1
