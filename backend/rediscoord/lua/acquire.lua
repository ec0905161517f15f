-- acquire: take the lock BASE for OWNER if it is free and OWNER is first in
-- line (or the line is empty); otherwise queue OWNER (unless TRY).
-- KEYS[1] BASE, KEYS[2] session key, KEYS[3] session's owned set
-- ARGV[1] OWNER "SID:WID", ARGV[2] WID, ARGV[3] TTL ms, ARGV[4] "1" = try,
-- ARGV[5] session key prefix "NS:session:"
-- Returns {1, token} when held (also when OWNER already held it: the call is
-- safe to repeat), {0, lock PTTL or -1} when not, {-1} when the session is gone.
local base, skey, owned = KEYS[1], KEYS[2], KEYS[3]
local owner, wid, ttl, try, sprefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local q = base .. ':waiters'
local fence = base .. ':fence'
local cur = redis.call('GET', base)
if cur == owner then
  return {1, redis.call('GET', fence)}
end
local spt = redis.call('PTTL', skey)
if spt < 0 then
  return {-1}
end
if not cur then
  local head = redis.call('LINDEX', q, 0)
  while head and head ~= owner and not session_alive(sprefix, head) do
    redis.call('LPOP', q)
    local hw = string.match(head, ':(.+)$')
    if hw then
      redis.call('DEL', base .. ':wake:' .. hw)
    end
    head = redis.call('LINDEX', q, 0)
  end
  if (not head) or head == owner then
    if head then
      redis.call('LPOP', q)
    end
    redis.call('SET', base, owner, 'PX', ttl)
    local token = redis.call('INCR', fence)
    redis.call('DEL', base .. ':wake:' .. wid)
    redis.call('SREM', owned, 'w ' .. wid .. ' ' .. base)
    redis.call('SADD', owned, 'h ' .. wid .. ' ' .. base)
    redis.call('PEXPIRE', owned, spt)
    return {1, tostring(token)}
  end
  -- The head is a live waiter that has not taken the free lock yet: make
  -- sure it has a wake-up pending (a lost wake-up must not stall the line).
  wake_head(base, sprefix)
end
if not try and not redis.call('LPOS', q, owner) then
  redis.call('RPUSH', q, owner)
  redis.call('SADD', owned, 'w ' .. wid .. ' ' .. base)
  redis.call('PEXPIRE', owned, spt)
end
local pt = -1
if cur then
  pt = redis.call('PTTL', base)
end
return {0, pt}
