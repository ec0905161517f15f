-- bstate: whether barrier BBASE is up. A barrier whose holder's session is
-- gone is lowered now.
-- KEYS[1] BBASE; ARGV[1] session key prefix
-- Returns -2 when down, else the barrier key's PTTL.
local base, sprefix = KEYS[1], ARGV[1]
local cur = redis.call('GET', base)
if not cur then
  return -2
end
if entry_pttl(sprefix, cur) == -2 then
  redis.call('DEL', base)
  redis.call('PUBLISH', base .. ':ch', 'down')
  return -2
end
return redis.call('PTTL', base)
