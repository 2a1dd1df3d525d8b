-- Shared by every session script. KEYS: items, meta, tokens, bucket index, bucket expiry.
local ITEMS, META, TOKENS, INDEX, EXPIRY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- One deadline, from server time, for the session's items and metadata and its index entry;
-- no TTL at all when ttl_ms is empty. (The tokens set keeps its own: see append.lua.)
-- With a TTL, returns 0 when the hash does not exist (PEXPIREAT found nothing), else 1.
local function set_deadline(member, now, ttl_ms)
  if ttl_ms ~= '' then
    local deadline = now + tonumber(ttl_ms)
    redis.call('PEXPIREAT', ITEMS, deadline)
    redis.call('ZADD', EXPIRY, deadline, member)
    return redis.call('PEXPIREAT', META, deadline)
  elseif redis.call('PERSIST', META) == 1 then
    redis.call('PERSIST', ITEMS)
    redis.call('ZREM', EXPIRY, member)
  end
end

-- A new session's hash. An expired session of the same id may still have its deadline in
-- the bucket's expiry index (until a purge): it goes, or the new session would count as
-- expired, and a purge would delete it.
local function create(member, session_id, now)
  redis.call('HSET', META, 'created', now, 'id', session_id)
  redis.call('ZREM', EXPIRY, member)
end

-- Record a write: the creation time and id once, the index entry (its score is the update
-- time: the hash holds no copy of it, so a write touches the hash only when it creates it)
-- and the deadline.
local function mark_written(member, session_id, now, ttl_ms)
  if redis.call('EXISTS', META) == 0 then
    create(member, session_id, now)
  end
  redis.call('ZADD', INDEX, now, member)
  set_deadline(member, now, ttl_ms)
end

-- RPUSH in chunks (Lua's unpack() cannot spread thousands of arguments at once). Returns
-- the list's new length, or nil when there was nothing to push.
local function push_all(first)
  local last = #ARGV
  local i = first
  local length = nil
  while i <= last do
    local j = math.min(i + 999, last)
    length = redis.call('RPUSH', ITEMS, unpack(ARGV, i, j))
    i = j + 1
  end
  return length
end

local function trim(max_items)
  if max_items ~= '' then
    redis.call('LTRIM', ITEMS, -tonumber(max_items), -1)
  end
end
