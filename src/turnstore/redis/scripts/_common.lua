-- Shared by every session script, after _session.lua and _index.lua.
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

-- A write's update time (the session's score in its bucket index: the hash holds no copy of
-- it) and deadline. Returns what set_deadline returns.
local function stamp(member, now, ttl_ms)
  redis.call('ZADD', INDEX, now, member)
  if INDEXING then
    refresh_indexed(member, now)
  end
  return set_deadline(member, now, ttl_ms)
end

-- Indexed keys passed as ARGV[first] = count, then the keys. Returns the list and the
-- position after it.
local function indexed_keys(first)
  local keys = {}
  local n = tonumber(ARGV[first])
  for i = first + 1, first + n do
    keys[#keys + 1] = ARGV[i]
  end
  return keys, first + n + 1
end

-- The hash of a session that has none yet.
local function ensure_hash(member, session_id, now)
  if redis.call('EXISTS', META) == 0 then
    create(member, session_id, now)
  end
end

-- Record a write: the creation time and id once, the update time and the deadline.
local function mark_written(member, session_id, now, ttl_ms)
  ensure_hash(member, session_id, now)
  stamp(member, now, ttl_ms)
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
