-- ARGV: member, count ('' = all), ttl_ms, refresh ('1' or '0')
-- Returns {total length, newest `count` items oldest first}; refreshes the TTL if asked.
local total = redis.call('LLEN', ITEMS)
local items
if ARGV[2] == '' then
  items = redis.call('LRANGE', ITEMS, 0, -1)
else
  items = redis.call('LRANGE', ITEMS, -tonumber(ARGV[2]), -1)
end
if ARGV[4] == '1' and ARGV[3] ~= '' and redis.call('EXISTS', META) == 1 then
  set_deadline(ARGV[1], now_ms(), ARGV[3])
end
return {total, items}
