-- qrelease: remove ENTRY from QBASE (a release, a resign, or the clean-up of
-- a failed call) and wake whoever waited on it (see q_remove).
-- KEYS[1] QBASE, KEYS[2] session's owned set
-- ARGV[1] kind, ARGV[2] ENTRY "SID:WID", ARGV[3] WID, ARGV[4] session key prefix
-- Returns 1 when ENTRY was there, else 0.
redis.call('SREM', KEYS[2], ARGV[1] .. ' ' .. ARGV[3] .. ' ' .. KEYS[1])
if q_remove(ARGV[1], KEYS[1], ARGV[2], ARGV[4]) then
  return 1
end
return 0
