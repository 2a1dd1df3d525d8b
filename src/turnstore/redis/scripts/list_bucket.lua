#!lua flags=no-writes
-- ARGV: base, max_score ('' = from the newest), max_member, want, budget, k1, v1, ...
-- Walks the bucket index from newest to oldest, strictly after the cursor (score, member),
-- and returns {exhausted, last_score, last_member, {member, score, meta, count, pttl}...}
-- for up to `want` live sessions whose metadata has every k=v pair; at most `budget`
-- index entries are looked at per call.
local want, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local found = {}
local scanned = 0
local last_score, last_member = ARGV[2], ARGV[3]

-- Byte order, as sorted sets order members (Lua's `<` follows the server's locale).
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local function matches(member)
  if not is_live(member, now) then
    return false
  end
  local meta_key = BASE .. member .. ':meta'
  for i = 6, #ARGV, 2 do
    if redis.call('HGET', meta_key, 'm:' .. ARGV[i]) ~= ARGV[i + 1] then
      return false
    end
  end
  return true
end

local function visit(member, score)
  scanned = scanned + 1
  last_score, last_member = score, member
  if matches(member) then
    local meta_key = BASE .. member .. ':meta'
    found[#found + 1] = {
      member, score, redis.call('HGETALL', meta_key),
      redis.call('LLEN', BASE .. member .. ':items'), redis.call('PTTL', meta_key)
    }
  end
end

-- Members tied at the cursor's score come first, newest member (descending) first.
if ARGV[2] ~= '' then
  local tied = redis.call('ZRANGEBYSCORE', INDEX, ARGV[2], ARGV[2])
  for i = #tied, 1, -1 do
    if bytes_less(tied[i], ARGV[3]) and #found < want and scanned < budget then
      visit(tied[i], ARGV[2])
    end
  end
end
local max = ARGV[2] == '' and '+inf' or ('(' .. ARGV[2])
local offset = 0
while #found < want and scanned < budget do
  local page = redis.call('ZREVRANGEBYSCORE', INDEX, max, '-inf', 'WITHSCORES', 'LIMIT', offset, 100)
  if #page == 0 then
    return {1, last_score, last_member, found}
  end
  for i = 1, #page, 2 do
    if #found >= want or scanned >= budget then
      break
    end
    visit(page[i], page[i + 1])
  end
  offset = offset + #page / 2
end
return {0, last_score, last_member, found}
