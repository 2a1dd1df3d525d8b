-- Indexed metadata and self-cleaning, shared by the session and bucket scripts (which define
-- INDEX, EXPIRY, INDEXED and TAG, the bucket's key base "prefix:{0042}:").
-- A session's indexed pairs are kept in the bucket's INDEXED hash as parts 'key:value' (each
-- side percent-escaped, so it holds no ':' or braces) joined by '{'; the part names the
-- bucket's sorted set TAG .. 'v:' .. part of the sessions having that pair, by update time.

local function escape(s)
  return (string.gsub(s, '[%%{}:]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

local function indexed_parts(member)
  local parts = {}
  local joined = redis.call('HGET', INDEXED, member)
  if joined then
    for part in string.gmatch(joined, '[^{]+') do
      parts[#parts + 1] = part
    end
  end
  return parts
end

-- A write's update time, given to the session's value index entries too.
local function refresh_indexed(member, score)
  for _, part in ipairs(indexed_parts(member)) do
    redis.call('ZADD', TAG .. 'v:' .. part, score, member)
  end
end

local function drop_indexed(member)
  local parts = indexed_parts(member)
  for _, part in ipairs(parts) do
    redis.call('ZREM', TAG .. 'v:' .. part, member)
  end
  if #parts > 0 then
    redis.call('HDEL', INDEXED, member)
  end
end

-- Index the session by the values that `meta_key` holds for the indexed `keys` (a list),
-- scored `score`; entries of values it no longer has go. Returns true when that changed
-- its entries (false: they were right already).
local function sync_indexed(member, meta_key, keys, score)
  local parts, wanted = {}, {}
  for _, key in ipairs(keys) do
    local value = redis.call('HGET', meta_key, 'm:' .. key)
    if value then
      local part = escape(key) .. ':' .. escape(value)
      parts[#parts + 1] = part
      wanted[part] = true
    end
  end
  local joined = redis.call('HGET', INDEXED, member)
  if (joined or '') == table.concat(parts, '{') then
    return false
  end
  for _, part in ipairs(indexed_parts(member)) do
    if not wanted[part] then
      redis.call('ZREM', TAG .. 'v:' .. part, member)
    end
  end
  for _, part in ipairs(parts) do
    redis.call('ZADD', TAG .. 'v:' .. part, score, member)
  end
  if #parts > 0 then
    redis.call('HSET', INDEXED, member, table.concat(parts, '{'))
  else
    redis.call('HDEL', INDEXED, member)
  end
  return true
end

-- What a write cleans up after expired sessions of its bucket: every write that may create
-- a session, up to CLEAN_PER_WRITE; the share of appends that asks for it, CLEAN_PER_SHARE.
local CLEAN_PER_WRITE, CLEAN_PER_SHARE = 4, 32

-- Removes up to `limit` sessions of the bucket whose deadline has passed: their index
-- entries and whatever keys expiry has not reclaimed yet (batch tokens expire on their
-- own). Returns how many it removed.
local function remove_expired(now, limit)
  local expired = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(expired) do
    drop_indexed(member)
    redis.call('DEL', TAG .. 's:' .. member .. ':items', TAG .. 's:' .. member .. ':meta')
    redis.call('ZREM', INDEX, member)
    redis.call('ZREM', EXPIRY, member)
  end
  return #expired
end
