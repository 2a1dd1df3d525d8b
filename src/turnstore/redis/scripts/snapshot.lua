#!lua flags=no-writes
-- ARGV: (none)
-- Returns {meta fields, every item}, read in one step, or false when the session is absent.
local meta = redis.call('HGETALL', META)
if #meta == 0 then
  return false
end
return {meta, redis.call('LRANGE', ITEMS, 0, -1)}
