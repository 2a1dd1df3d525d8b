-- ARGV: member, session_id, token, token_ttl_ms, ttl_ms, max_items, item...
-- Appends the items unless the batch token was already applied. Returns 1, or 0 for a repeat.
local member, session_id, token = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', TOKENS, '-inf', now)
if redis.call('ZSCORE', TOKENS, token) then
  return 0
end
redis.call('ZADD', TOKENS, now + tonumber(ARGV[4]), token)
push_all(7)
trim(ARGV[6])
mark_written(member, session_id, now, ARGV[5])
return 1
