-- ARGV: member, session_id, ttl_ms, max_items, replace_meta ('1' or '0'),
--       created_ms, updated_ms ('' = now), n_indexed, indexed_key..., n_pairs, key1, value1,
--       ..., item...
-- Replaces the history (and, with replace_meta, the whole metadata) in one step; a copied
-- session (import, migrate) may keep its own creation and update times.
local member, session_id = ARGV[1], ARGV[2]
local keys, at = indexed_keys(8)
local pairs_end = at + 2 * tonumber(ARGV[at])
local now = now_ms()
INDEXING = true
redis.call('DEL', ITEMS)
if ARGV[5] == '1' then
  redis.call('DEL', META)
end
ensure_hash(member, session_id, now)
if ARGV[5] == '1' then
  for i = at + 1, pairs_end, 2 do
    redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
  end
end
push_all(pairs_end + 1)
trim(ARGV[4])
stamp(member, now, ARGV[3])
local updated = now
if ARGV[6] ~= '' then
  redis.call('HSET', META, 'created', ARGV[6])
  updated = tonumber(ARGV[7])
  redis.call('ZADD', INDEX, updated, member)
  refresh_indexed(member, updated)
end
if ARGV[5] == '1' and #keys > 0 then
  sync_indexed(member, META, keys, updated)
end
remove_expired(now, CLEAN_PER_WRITE)
return 1
