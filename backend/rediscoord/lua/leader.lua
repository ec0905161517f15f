-- leader: the live candidacy at the head of election QBASE (dead ones in
-- front of it are removed, which wakes their successors).
-- KEYS[1] QBASE; ARGV[1] session key prefix
-- Returns {} when there is no candidate, else {token, value, session PTTL}.
local base, sprefix = KEYS[1], ARGV[1]
while true do
  local h = redis.call('ZRANGE', base .. ':q', 0, 0, 'WITHSCORES')
  if #h == 0 then
    return {}
  end
  local pt = entry_pttl(sprefix, h[1])
  if pt ~= -2 then
    return {h[2], redis.call('HGET', base .. ':info', h[1]) or '', pt}
  end
  q_remove('e', base, h[1], sprefix)
end
