-- Helpers shared by every coord script (prepended to each one).
--
-- Key layout, for namespace NS:
--   NS:session:SID              the session key (PX = session TTL)
--   NS:session:SID:owned        set of "h WID BASE" (held lock) and
--                               "w WID BASE" (queued waiter) entries
--   BASE = NS:lock:{NAME}       lock key, value "SID:WID" (PX = session TTL)
--   BASE:fence                  fencing counter (INCR on every acquisition)
--   BASE:waiters                FIFO list of waiting "SID:WID" entries
--   BASE:wake:WID               a waiter's wake-up list (BLPOP), short PX

-- session_alive reports whether the session of an "SID:WID" entry exists.
local function session_alive(sprefix, entry)
  local sid = string.match(entry, '^([^:]+):')
  return sid ~= nil and redis.call('EXISTS', sprefix .. sid) == 1
end

-- wake_head wakes the first live waiter in BASE's queue (one wake-up item at
-- most), dropping dead waiters (session gone) in front of it.
local function wake_head(base, sprefix)
  local q = base .. ':waiters'
  while true do
    local head = redis.call('LINDEX', q, 0)
    if not head then
      return
    end
    local sid, wid = string.match(head, '^([^:]+):(.+)$')
    if sid then
      local pt = redis.call('PTTL', sprefix .. sid)
      if pt > 0 then
        local wk = base .. ':wake:' .. wid
        if redis.call('LLEN', wk) == 0 then
          redis.call('RPUSH', wk, 'wake')
        end
        redis.call('PEXPIRE', wk, pt)
        return
      end
      redis.call('DEL', base .. ':wake:' .. wid)
    end
    redis.call('LPOP', q)
  end
end

-- drop_entry removes every trace of one Lock call OWNER ("SID:WID") on BASE:
-- the lock if OWNER holds it, its place in line, its wake-up list and its
-- entries in the session's OWNED set; then, when the lock is free, it passes
-- the turn on to the next live waiter (OWNER may have consumed the wake-up
-- meant for the head). Returns 1 when OWNER held the lock, else 0.
local function drop_entry(base, owner, wid, owned, sprefix)
  local held = 0
  if redis.call('GET', base) == owner then
    redis.call('DEL', base)
    held = 1
  end
  redis.call('LREM', base .. ':waiters', 0, owner)
  redis.call('DEL', base .. ':wake:' .. wid)
  redis.call('SREM', owned, 'w ' .. wid .. ' ' .. base, 'h ' .. wid .. ' ' .. base)
  if redis.call('EXISTS', base) == 0 then
    wake_head(base, sprefix)
  end
  return held
end
