-- qacquire: queue ENTRY in QBASE (once; the script is safe to repeat) and
-- report whether it holds (see q_eval).
-- KEYS[1] QBASE, KEYS[2] session key, KEYS[3] session's owned set
-- ARGV[1] kind 'e'|'r'|'s', ARGV[2] ENTRY "SID:WID", ARGV[3] WID,
-- ARGV[4] info (election value, rwlock mode), ARGV[5] semaphore limit,
-- ARGV[6] "1" = try, ARGV[7] session key prefix
-- Returns {1, token} when held, {0, PTTL} when waiting (see q_eval),
-- {2} when TRY failed (the entry is gone again), {-1} when the session is gone.
local base, skey, owned = KEYS[1], KEYS[2], KEYS[3]
local k, entry, wid, info = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, try, sprefix = tonumber(ARGV[5]) or 1, ARGV[6] == '1', ARGV[7]
local q = base .. ':q'
local spt = redis.call('PTTL', skey)
if spt < 0 then
  return {-1}
end
local member = k .. ' ' .. wid .. ' ' .. base
local score = redis.call('ZSCORE', q, entry)
local fresh = false
if not score then
  score = redis.call('INCR', base .. ':seq')
  redis.call('ZADD', q, score, entry)
  redis.call('HSET', base .. ':info', entry, info)
  if k == 's' then
    redis.call('SET', base .. ':limit', limit)
  end
  redis.call('SADD', owned, member)
  redis.call('PEXPIRE', owned, spt)
  fresh = true
end
local held, pt = q_eval(k, base, entry, limit, sprefix)
if held then
  redis.call('DEL', base .. ':wake:' .. wid)
  if k == 'e' and fresh then
    redis.call('PUBLISH', base .. ':ch', 'leader')
  end
  return {1, tostring(score)}
end
if try then
  q_remove(k, base, entry, sprefix)
  redis.call('SREM', owned, member)
  return {2}
end
return {0, pt}
