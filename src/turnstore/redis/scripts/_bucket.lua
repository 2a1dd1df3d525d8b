-- Shared by the bucket scripts. KEYS: bucket index, bucket expiry, bucket indexed metadata.
-- ARGV[1] is the key base of the bucket's sessions ("prefix:{0042}:s:"), so a session's keys
-- are built from its member; they share the bucket's hash tag, hence its slot.
local INDEX, EXPIRY, INDEXED, BASE = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local TAG = string.sub(INDEX, 1, -6) -- INDEX is TAG .. 'index'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Live: has metadata and no deadline in the past (keys expire at that deadline anyway).
local function is_live(member, now)
  local deadline = redis.call('ZSCORE', EXPIRY, member)
  if deadline and tonumber(deadline) <= now then
    return false
  end
  return redis.call('EXISTS', BASE .. member .. ':meta') == 1
end
