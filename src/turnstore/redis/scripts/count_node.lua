#!lua flags=no-writes,allow-cross-slot-keys
-- ARGV: prefix, buckets ('0003,0042,...': the buckets this server holds)
-- Live sessions in those buckets: indexed ones minus those whose deadline has passed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = 0
for bucket in string.gmatch(ARGV[2], '[^,]+') do
  local tag = ARGV[1] .. ':{' .. bucket .. '}:'
  count = count + redis.call('ZCARD', tag .. 'index')
    - redis.call('ZCOUNT', tag .. 'expiry', '-inf', now)
end
return count
