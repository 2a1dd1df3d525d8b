-- ARGV: base, batch
-- Removes up to `batch` sessions whose deadline has passed: their index entries and whatever
-- keys expiry has not reclaimed yet (batch tokens expire on their own). Returns {removed, more}.
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(expired) do
  redis.call('DEL', BASE .. member .. ':items', BASE .. member .. ':meta')
  redis.call('ZREM', INDEX, member)
  redis.call('ZREM', EXPIRY, member)
end
local more = 0
if #expired == tonumber(ARGV[2]) then
  more = 1
end
return {#expired, more}
