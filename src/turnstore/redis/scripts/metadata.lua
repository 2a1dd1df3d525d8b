-- ARGV: member, session_id, ttl_ms, n_set, key1, value1, ..., removed_key...
-- Merges metadata pairs and removes keys. Removing from an absent session creates nothing.
local member, session_id = ARGV[1], ARGV[2]
local set_end = 4 + 2 * tonumber(ARGV[4])
if set_end == 4 and redis.call('EXISTS', META) == 0 then
  return 0
end
-- First, so that a session this creates gets its 'created' and 'id'.
mark_written(member, session_id, now_ms(), ARGV[3])
for i = 5, set_end, 2 do
  redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
end
for i = set_end + 1, #ARGV do
  redis.call('HDEL', META, 'm:' .. ARGV[i])
end
return 1
