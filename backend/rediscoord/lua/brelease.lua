-- brelease: lower barrier BBASE, whoever raised it, and tell the waiters.
-- KEYS[1] BBASE; ARGV[1] session key prefix
-- Returns 1 when it was up, else 0.
local base, sprefix = KEYS[1], ARGV[1]
local cur = redis.call('GET', base)
if not cur then
  return 0
end
redis.call('DEL', base)
local sid, wid = string.match(cur, '^([^:]+):(.+)$')
if sid then
  redis.call('SREM', sprefix .. sid .. ':owned', 'b ' .. wid .. ' ' .. base)
end
redis.call('PUBLISH', base .. ':ch', 'down')
return 1
