-- ARGV: member, session_id, token, token_ttl_ms, ttl_ms, max_items, flags, answered, item...
-- flags: 'p' forget expired batch tokens, 'c' clean expired sessions of the bucket, 'i' the
-- store indexes metadata (the session's value index entries get the update time too).
-- answered: batch tokens (space-separated, may be empty) of this writer's earlier appends
-- that were sent once and answered: no copy of them can arrive any more, so they are
-- forgotten now rather than kept for their whole lifetime.
-- Appends the items unless the batch token was already applied. Returns 1, or 0 for a repeat.
local member, session_id, token = ARGV[1], ARGV[2], ARGV[3]
local flags = ARGV[7]
INDEXING = string.find(flags, 'i', 1, true) ~= nil
local now = now_ms()
local token_deadline = now + tonumber(ARGV[4])
if redis.call('ZADD', TOKENS, 'NX', token_deadline, token) == 0 then
  -- Seen before: a repeat, unless that sighting has expired (a reused idempotency key).
  if tonumber(redis.call('ZSCORE', TOKENS, token)) > now then
    return 0
  end
  redis.call('ZADD', TOKENS, token_deadline, token)
end
if ARGV[8] ~= '' then
  for answered in string.gmatch(ARGV[8], '%S+') do
    if answered ~= token then
      redis.call('ZREM', TOKENS, answered)
    end
  end
end
if string.find(flags, 'p', 1, true) then
  -- Forgetting expired tokens is amortized: the caller asks for it on a fraction of appends.
  redis.call('ZREMRANGEBYSCORE', TOKENS, '-inf', now)
end
-- The tokens set outlives every token in it, not the session: a batch resent after the
-- session expired or was cleared is still recognized (an idempotency key for 24 h), and an
-- idle session's tokens do not stay forever. Its deadline moves, by one token lifetime
-- beyond the new token's, only when the new token would outlive it: once per token
-- lifetime, not on every append.
local tokens_ttl = redis.call('PTTL', TOKENS)
if tokens_ttl < 0 or now + tokens_ttl < token_deadline then
  redis.call('PEXPIREAT', TOKENS, token_deadline + tonumber(ARGV[4]))
end
-- A list that is exactly this batch long was empty before it: only then can the session be
-- new, and only then is its hash looked at. Otherwise the hash is left alone (the index
-- score is the update time), which keeps the common append one server call shorter.
local created = false
if push_all(9) == #ARGV - 8 and redis.call('EXISTS', META) == 0 then
  create(member, session_id, now)
  created = true
end
trim(ARGV[6])
if stamp(member, now, ARGV[5]) == 0 then
  -- With a TTL the deadline tells for free that the hash is gone while the items stayed
  -- (evicted by a volatile-* maxmemory policy, or deleted behind the library's back):
  -- make it again rather than leave the session unlisted.
  create(member, session_id, now)
  set_deadline(member, now, ARGV[5])
end
-- Expired sessions leave their index entries behind: writes clean them up as they go, a few
-- for every new session (so the index keeps pace with the sessions that can expire) and more
-- on a share of the other appends (about two per append).
if created then
  remove_expired(now, CLEAN_PER_WRITE)
elseif string.find(flags, 'c', 1, true) then
  remove_expired(now, CLEAN_PER_SHARE)
end
return 1
