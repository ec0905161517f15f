-- dleave: remove participant HID of session SID from double barrier DBASE
-- (safe to repeat) and count the live participants left (see d_leave).
-- KEYS[1] DBASE, KEYS[2] session's owned set
-- ARGV[1] SID, ARGV[2] HID, ARGV[3] session key prefix
-- Returns {count, smallest session PTTL of those left or -1}.
local base, owned = KEYS[1], KEYS[2]
local sid, hid, sprefix = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', owned, 'd ' .. hid .. ' ' .. base)
local n, minpt = d_leave(base, hid, sid, sprefix)
return {n, minpt}
