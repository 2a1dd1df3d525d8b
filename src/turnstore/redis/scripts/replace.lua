-- ARGV: member, session_id, ttl_ms, max_items, replace_meta ('1' or '0'),
--       created_ms, updated_ms ('' = now), n_pairs, key1, value1, ..., item...
-- Replaces the history (and, with replace_meta, the whole metadata) in one step; a copied
-- session (import, migrate) may keep its own creation and update times.
local member, session_id = ARGV[1], ARGV[2]
local pairs_end = 8 + 2 * tonumber(ARGV[8])
local now = now_ms()
redis.call('DEL', ITEMS)
if ARGV[5] == '1' then
  redis.call('DEL', META)
end
ensure_hash(member, session_id, now)
if ARGV[5] == '1' then
  for i = 9, pairs_end, 2 do
    redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
  end
end
push_all(pairs_end + 1)
trim(ARGV[4])
stamp(member, now, ARGV[3])
if ARGV[6] ~= '' then
  redis.call('HSET', META, 'created', ARGV[6])
  redis.call('ZADD', INDEX, ARGV[7], member)
end
return 1
