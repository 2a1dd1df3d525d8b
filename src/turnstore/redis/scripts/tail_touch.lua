-- ARGV: member, ttl_ms, count
-- `tail.lua` for a session whose TTL slides on reads: refreshes the deadline of an existing
-- session in the same step. Returns {length, {item...}}.
if redis.call('EXISTS', META) == 1 then
  set_deadline(ARGV[1], now_ms(), ARGV[2])
end
return {redis.call('LLEN', ITEMS), redis.call('LRANGE', ITEMS, -tonumber(ARGV[3]), -1)}
