-- denter: register participant HID of session SID in double barrier DBASE
-- (safe to repeat) and raise the ready marker once N live participants are in.
-- KEYS[1] DBASE, KEYS[2] session key, KEYS[3] session's owned set
-- ARGV[1] SID, ARGV[2] HID (hex participant ID), ARGV[3] N, ARGV[4] session key prefix
-- Returns 1 when ready, 0 when waiting, -1 when the session is gone, -2
-- when HID is registered by another session.
local base, skey, owned = KEYS[1], KEYS[2], KEYS[3]
local sid, hid, n, sprefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local spt = redis.call('PTTL', skey)
if spt < 0 then
  return -1
end
local p = base .. ':p'
-- A ready marker with no live participant left is stale (its participants
-- died without a script noticing): this is a new round.
if redis.call('EXISTS', base .. ':ready') == 1 and d_count(base, sprefix) == 0 then
  redis.call('DEL', base .. ':ready')
end
local cur = redis.call('HGET', p, hid)
if cur and cur ~= sid and redis.call('EXISTS', sprefix .. cur) == 1 then
  return -2
end
if cur ~= sid then
  redis.call('HSET', p, hid, sid)
  redis.call('SADD', owned, 'd ' .. hid .. ' ' .. base)
  redis.call('PEXPIRE', owned, spt)
end
if redis.call('EXISTS', base .. ':ready') == 1 then
  return 1
end
local count = d_count(base, sprefix)
if count >= n then
  redis.call('SET', base .. ':ready', '1')
  redis.call('PUBLISH', base .. ':ch', 'ready')
  return 1
end
return 0
