-- bhold: raise barrier BBASE for ENTRY unless it is up (a barrier whose
-- holder's session is gone counts as down).
-- KEYS[1] BBASE, KEYS[2] session key, KEYS[3] session's owned set
-- ARGV[1] ENTRY "SID:WID", ARGV[2] WID, ARGV[3] TTL ms, ARGV[4] session key prefix
-- Returns 1 when raised (or already raised by ENTRY), 0 when up, -1 when the
-- session is gone.
local base, skey, owned = KEYS[1], KEYS[2], KEYS[3]
local entry, wid, ttl, sprefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local spt = redis.call('PTTL', skey)
if spt < 0 then
  return -1
end
local cur = redis.call('GET', base)
if cur == entry then
  return 1
end
if cur and entry_pttl(sprefix, cur) ~= -2 then
  return 0
end
redis.call('SET', base, entry, 'PX', ttl)
redis.call('SADD', owned, 'b ' .. wid .. ' ' .. base)
redis.call('PEXPIRE', owned, spt)
return 1
