-- ARGV: member, session_id, token, token_ttl_ms, ttl_ms, max_items, prune ('1' or '0'), item...
-- Appends the items unless the batch token was already applied. Returns 1, or 0 for a repeat.
local member, session_id, token = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local token_deadline = now + tonumber(ARGV[4])
if redis.call('ZADD', TOKENS, 'NX', token_deadline, token) == 0 then
  -- Seen before: a repeat, unless that sighting has expired (a reused idempotency key).
  if tonumber(redis.call('ZSCORE', TOKENS, token)) > now then
    return 0
  end
  redis.call('ZADD', TOKENS, token_deadline, token)
end
if ARGV[7] == '1' then
  -- Forgetting expired tokens is amortized: the caller asks for it on a fraction of appends.
  redis.call('ZREMRANGEBYSCORE', TOKENS, '-inf', now)
end
-- The tokens set lives as long as its longest-lived token, not as long as the session: a
-- batch resent after the session expired or was cleared is still recognized (an
-- idempotency key for 24 h), and an idle session's tokens do not stay forever.
local last = redis.call('ZRANGE', TOKENS, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', TOKENS, last[2])
push_all(8)
trim(ARGV[6])
mark_written(member, session_id, now, ARGV[5])
return 1
