-- Helpers of the election, read-write lock, semaphore and barrier scripts
-- (prepended to every script after common.lua).
--
-- Queue recipes, QBASE = NS:election:{NAME}, NS:rwlock:{NAME}, NS:sem:{NAME}:
--   QBASE:q         ZSET of contender entries "SID:WID", score = sequence
--   QBASE:seq       sequence counter (INCR per entry); an entry's token
--   QBASE:info      HASH entry -> election value, or rwlock mode 'r' / 'w'
--   QBASE:limit     the semaphore's limit
--   QBASE:wake:WID  an entry's wake-up list (BLPOP)
--   QBASE:ch        election channel: published when the leader or its
--                   value may have changed
-- An entry is live while its session key exists; dead entries are removed
-- when a script meets them. The session's owned set lists "K WID QBASE" with
-- K = 'e' (election), 'r' (rwlock), 's' (semaphore).
--
-- Barriers: BBASE = NS:barrier:{NAME} holds "SID:WID" (PX = session TTL,
-- renewed by the heartbeat), owned entry "b WID BBASE", channel BBASE:ch.
-- Double barriers: DBASE = NS:dbarrier:{NAME}; DBASE:p HASH hex(ID) -> SID,
-- DBASE:ready marker, channel DBASE:ch, owned entry "d hex(ID) DBASE".

-- entry_pttl returns the PTTL of the session of an "SID:WID" entry (-2 when
-- the session is gone).
local function entry_pttl(sprefix, entry)
  local sid = string.match(entry, '^([^:]+):')
  if not sid then
    return -2
  end
  return redis.call('PTTL', sprefix .. sid)
end

local function entry_wid(entry)
  return string.match(entry, ':(.+)$') or ''
end

-- q_wake pushes one wake-up to ENTRY's list (expiring with its session).
local function q_wake(base, entry, pt)
  local wk = base .. ':wake:' .. entry_wid(entry)
  if redis.call('LLEN', wk) == 0 then
    redis.call('RPUSH', wk, 'wake')
  end
  if pt > 0 then
    redis.call('PEXPIRE', wk, pt)
  end
end

-- q_remove removes ENTRY from queue QBASE of kind K and wakes exactly the
-- entries that waited on it:
--   'e' its successor (and the election channel when ENTRY led);
--   'r' a writer: the readers right after it, or the writer right after it;
--       a reader: the entry right after it if that is a writer;
--   's' when ENTRY was one of the first LIMIT, the entry now LIMIT-th.
-- Dead wake targets are removed in turn. Returns true when ENTRY was there.
local function q_remove(k, base, entry, sprefix)
  local q, info = base .. ':q', base .. ':info'
  local pos = redis.call('ZRANK', q, entry)
  if not pos then
    return false
  end
  local mode = redis.call('HGET', info, entry)
  redis.call('ZREM', q, entry)
  redis.call('HDEL', info, entry)
  redis.call('DEL', base .. ':wake:' .. entry_wid(entry))
  local targets = {}
  if k == 'e' then
    if pos == 0 then
      redis.call('PUBLISH', base .. ':ch', 'leader')
    end
    targets = redis.call('ZRANGE', q, pos, pos)
  elseif k == 'r' then
    if mode == 'w' then
      for _, e in ipairs(redis.call('ZRANGE', q, pos, -1)) do
        if redis.call('HGET', info, e) == 'w' then
          if #targets == 0 then
            table.insert(targets, e)
          end
          break
        end
        table.insert(targets, e)
      end
    else
      local nxt = redis.call('ZRANGE', q, pos, pos)
      if nxt[1] and redis.call('HGET', info, nxt[1]) == 'w' then
        targets = nxt
      end
    end
  elseif k == 's' then
    local limit = tonumber(redis.call('GET', base .. ':limit') or '1') or 1
    if pos < limit then
      targets = redis.call('ZRANGE', q, limit - 1, limit - 1)
    end
  end
  for _, t in ipairs(targets) do
    local pt = entry_pttl(sprefix, t)
    if pt == -2 then
      q_remove(k, base, t, sprefix)
    else
      q_wake(base, t, pt)
    end
  end
  return true
end

-- q_eval removes the dead entries ahead of ENTRY and reports whether ENTRY
-- holds (nil when it is not queued) and the smallest session PTTL of the
-- entries still ahead of it (-1 when none): the time after which one of them
-- may have died without a script noticing.
local function q_eval(k, base, entry, limit, sprefix)
  local q, info = base .. ':q', base .. ':info'
  while true do
    local r = redis.call('ZRANK', q, entry)
    if not r then
      return nil, -1
    end
    local ahead = {}
    if r > 0 then
      ahead = redis.call('ZRANGE', q, 0, r - 1)
    end
    local minpt, pruned, writer = -1, false, false
    for _, e in ipairs(ahead) do
      local pt = entry_pttl(sprefix, e)
      if pt == -2 then
        q_remove(k, base, e, sprefix)
        pruned = true
      else
        if pt > 0 and (minpt < 0 or pt < minpt) then
          minpt = pt
        end
        if k == 'r' and redis.call('HGET', info, e) == 'w' then
          writer = true
        end
      end
    end
    if not pruned then
      local held
      if k == 's' then
        held = r < limit
      elseif k == 'r' and redis.call('HGET', info, entry) == 'r' then
        held = not writer
      else
        held = r == 0
      end
      return held, minpt
    end
  end
end

-- d_count removes the dead participants of double barrier DBASE and returns
-- the number of live ones and the smallest session PTTL among them.
local function d_count(base, sprefix)
  local p = base .. ':p'
  local kv = redis.call('HGETALL', p)
  local n, minpt = 0, -1
  for i = 1, #kv, 2 do
    local pt = redis.call('PTTL', sprefix .. kv[i + 1])
    if pt == -2 then
      redis.call('HDEL', p, kv[i])
    else
      n = n + 1
      if pt > 0 and (minpt < 0 or pt < minpt) then
        minpt = pt
      end
    end
  end
  return n, minpt
end

-- d_leave removes participant HID of session SID (if it is that session's)
-- and, when no participant is left, lowers the ready marker and tells the
-- waiters. Returns the number of live participants left and their smallest
-- session PTTL.
local function d_leave(base, hid, sid, sprefix)
  local p = base .. ':p'
  local removed = 0
  if redis.call('HGET', p, hid) == sid then
    removed = redis.call('HDEL', p, hid)
  end
  local n, minpt = d_count(base, sprefix)
  if n == 0 and (removed == 1 or redis.call('EXISTS', base .. ':ready') == 1) then
    redis.call('DEL', base .. ':ready')
    redis.call('PUBLISH', base .. ':ch', 'empty')
  end
  return n, minpt
end

-- drop_owned removes what owned-set member M of session SID stands for.
local function drop_owned(m, sid, owned, sprefix)
  local kind, wid, base = string.match(m, '^(%a) (%x+) (.+)$')
  if not kind then
    redis.call('SREM', owned, m)
    return
  end
  local entry = sid .. ':' .. wid
  if kind == 'h' or kind == 'w' then
    drop_entry(base, entry, wid, owned, sprefix)
    return
  end
  if kind == 'e' or kind == 'r' or kind == 's' then
    q_remove(kind, base, entry, sprefix)
  elseif kind == 'b' then
    if redis.call('GET', base) == entry then
      redis.call('DEL', base)
      redis.call('PUBLISH', base .. ':ch', 'down')
    end
  elseif kind == 'd' then
    d_leave(base, wid, sid, sprefix)
  end
  redis.call('SREM', owned, m)
end
