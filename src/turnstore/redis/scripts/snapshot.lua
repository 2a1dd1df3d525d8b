#!lua flags=no-writes
-- ARGV: member
-- Returns {meta fields, every item, remaining ttl in ms (-1 = none), server time in ms,
-- update time in ms (the index score; false if the session is not indexed)}, read in one
-- step, or false when the session is absent: what a copy of the session needs (see info.lua).
local meta = redis.call('HGETALL', META)
if #meta == 0 then
  return false
end
return {
  meta, redis.call('LRANGE', ITEMS, 0, -1), redis.call('PTTL', META), now_ms(),
  redis.call('ZSCORE', INDEX, ARGV[1])
}
