-- ARGV: member, session_id, ttl_ms, max_items, replace_meta ('1' or '0'), n_pairs,
--       key1, value1, ..., item...
-- Replaces the history (and, with replace_meta, the whole metadata) in one step.
local member, session_id = ARGV[1], ARGV[2]
local pairs_end = 6 + 2 * tonumber(ARGV[6])
redis.call('DEL', ITEMS)
if ARGV[5] == '1' then
  redis.call('DEL', META)
  for i = 7, pairs_end, 2 do
    redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
  end
end
push_all(pairs_end + 1)
trim(ARGV[4])
mark_written(member, session_id, now_ms(), ARGV[3])
return 1
