-- ARGV: member, session_id, ttl_ms, n_indexed, indexed_key..., n_set, key1, value1, ...,
--       removed_key...
-- Merges metadata pairs and removes keys, and indexes the session by its new values of the
-- store's indexed keys. Removing from an absent session creates nothing.
local member, session_id = ARGV[1], ARGV[2]
local keys, at = indexed_keys(4)
local set_first = at + 1
local set_end = at + 2 * tonumber(ARGV[at])
if set_end == at and redis.call('EXISTS', META) == 0 then
  return 0
end
local now = now_ms()
INDEXING = true
-- First, so that a session this creates gets its 'created' and 'id'.
mark_written(member, session_id, now, ARGV[3])
for i = set_first, set_end, 2 do
  redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
end
for i = set_end + 1, #ARGV do
  redis.call('HDEL', META, 'm:' .. ARGV[i])
end
if #keys > 0 then
  sync_indexed(member, META, keys, now)
end
remove_expired(now, CLEAN_PER_WRITE)
return 1
