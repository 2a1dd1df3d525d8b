#!lua flags=no-writes
-- ARGV: member
-- Returns {meta fields, item count, remaining ttl in ms (-1 = none), server time in ms,
-- update time in ms (the index score; false if the session is not indexed)}, or false when
-- the session does not exist.
local meta = redis.call('HGETALL', META)
if #meta == 0 then
  return false
end
return {
  meta, redis.call('LLEN', ITEMS), redis.call('PTTL', META), now_ms(),
  redis.call('ZSCORE', INDEX, ARGV[1])
}
