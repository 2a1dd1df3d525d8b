-- ARGV: member, ttl_ms
-- Refreshes the deadline of an existing session. Returns 1, or 0 when it does not exist.
if redis.call('EXISTS', META) == 0 then
  return 0
end
set_deadline(ARGV[1], now_ms(), ARGV[2])
return 1
