#!lua flags=no-writes,allow-cross-slot-keys
-- ARGV: prefix, buckets (unused), tag1, member1, tag2, member2, ... (sessions this server
-- holds). Returns {server time in ms, per session {meta, item count, remaining ttl in ms (-1 = none)}, or false when
-- it no longer exists}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 3, #ARGV, 2 do
  local base = ARGV[i] .. 's:' .. ARGV[i + 1]
  local meta = redis.call('HGETALL', base .. ':meta')
  if #meta == 0 then
    out[#out + 1] = false
  else
    out[#out + 1] = {meta, redis.call('LLEN', base .. ':items'), redis.call('PTTL', base .. ':meta')}
  end
end
return {now, out}
