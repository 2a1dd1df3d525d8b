-- Shared by every session script. KEYS: items, meta, tokens, bucket index, bucket expiry.
local ITEMS, META, TOKENS, INDEX, EXPIRY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- One deadline, from server time, for the session's items and metadata and its index entry;
-- no TTL at all when ttl_ms is empty. (The tokens set keeps its own: see append.lua.)
local function set_deadline(member, now, ttl_ms)
  if ttl_ms ~= '' then
    local deadline = now + tonumber(ttl_ms)
    redis.call('PEXPIREAT', ITEMS, deadline)
    redis.call('PEXPIREAT', META, deadline)
    redis.call('ZADD', EXPIRY, deadline, member)
  elseif redis.call('PERSIST', META) == 1 then
    redis.call('PERSIST', ITEMS)
    redis.call('ZREM', EXPIRY, member)
  end
end

-- Record a write: creation time once, update time, the index entry and the deadline.
-- Every write stamps 'updated', so a hash that gains that field (HSET counts the fields it
-- adds) is a new session's: only then are 'created' and 'id' written.
local function mark_written(member, session_id, now, ttl_ms)
  if redis.call('HSET', META, 'updated', now) == 1 then
    redis.call('HSET', META, 'created', now, 'id', session_id)
  end
  redis.call('ZADD', INDEX, now, member)
  set_deadline(member, now, ttl_ms)
end

-- RPUSH in chunks: Lua's unpack() cannot spread thousands of arguments at once.
local function push_all(first)
  local last = #ARGV
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('RPUSH', ITEMS, unpack(ARGV, i, j))
    i = j + 1
  end
end

local function trim(max_items)
  if max_items ~= '' then
    redis.call('LTRIM', ITEMS, -tonumber(max_items), -1)
  end
end
