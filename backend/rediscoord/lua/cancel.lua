-- cancel: remove every trace of OWNER's Lock call on BASE (see drop_entry).
-- KEYS[1] BASE, KEYS[2] session's owned set
-- ARGV[1] OWNER "SID:WID", ARGV[2] WID, ARGV[3] session key prefix
-- Returns 1 when OWNER held the lock (and released it now), else 0.
return drop_entry(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[3])
