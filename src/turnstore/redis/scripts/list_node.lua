#!lua flags=no-writes,allow-cross-slot-keys
-- ARGV: prefix, buckets ('0003,0042,...': the buckets this server holds), suffix ('index',
--       or 'v:<key>:<value>' for a value index), max_score ('' = from the newest),
--       max_member, want, budget, details ('1' or '0'), k1, v1, ... (metadata filters)
-- Merges the sorted sets `prefix:{bucket}:suffix` newest first (score, then member,
-- descending), strictly after the position (max_score, max_member), and returns
-- {exhausted, last_score, last_member, {{tag, member, score[, meta, count, pttl]}...}, now}
-- for up to `want` live sessions whose metadata has every k=v pair. At most `budget` entries are
-- looked at; the last one looked at is the position to go on from.
local prefix, suffix = ARGV[1], ARGV[3]
local want, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local details = ARGV[8] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

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

-- Entries are {score, member, bucket}; `first(a, b)`: a comes before b, newest first.
local function first(a, b)
  if a[1] ~= b[1] then
    return a[1] > b[1]
  end
  return bytes_less(b[2], a[2])
end

local heap = {}
local function push(entry)
  heap[#heap + 1] = entry
  local i = #heap
  while i > 1 do
    local parent = math.floor(i / 2)
    if not first(heap[i], heap[parent]) then
      break
    end
    heap[i], heap[parent] = heap[parent], heap[i]
    i = parent
  end
end
local function pop()
  local top = heap[1]
  local last = table.remove(heap)
  if #heap > 0 then
    heap[1] = last
    local i = 1
    while true do
      local l, r, best = 2 * i, 2 * i + 1, i
      if l <= #heap and first(heap[l], heap[best]) then
        best = l
      end
      if r <= #heap and first(heap[r], heap[best]) then
        best = r
      end
      if best == i then
        break
      end
      heap[i], heap[best] = heap[best], heap[i]
      i = best
    end
  end
  return top
end

-- A bucket reads its set in chunks: ZREVRANGEBYSCORE from the score of the last entry read
-- (inclusive), skipping the `skip` entries of that score already read. Before its first
-- read, entries tied with the position at max_score and not after it are skipped too.
local cursor_score = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local cursor_member = ARGV[5]
local buckets = {}
local function fill(b)
  local max = b.score and b.score or '+inf'
  local reply = redis.call(
    'ZREVRANGEBYSCORE', b.key, max, '-inf', 'WITHSCORES', 'LIMIT', b.skip, b.chunk
  )
  b.chunk = math.min(b.chunk * 4, 256)
  b.buffer, b.next = {}, 1
  if #reply < 2 then
    b.done = true
    return
  end
  for i = 1, #reply, 2 do
    b.buffer[#b.buffer + 1] = {tonumber(reply[i + 1]), reply[i], b}
  end
end
-- The bucket's next entry, or nil.
local function take(b)
  while not b.done do
    if b.next > #b.buffer then
      fill(b)
    else
      local entry = b.buffer[b.next]
      b.next = b.next + 1
      if entry[1] == b.score then
        b.skip = b.skip + 1
      else
        b.score, b.skip = entry[1], 1
      end
      if not b.fresh or not cursor_score or first({cursor_score, cursor_member}, entry) then
        b.fresh = false
        return entry
      end
    end
  end
  return nil
end

local chunk = 2
for bucket in string.gmatch(ARGV[2], '[^,]+') do
  local tag = prefix .. ':{' .. bucket .. '}:'
  local b = {tag = tag, key = tag .. suffix, score = cursor_score, skip = 0, chunk = chunk,
             buffer = {}, next = 1, done = false, fresh = true}
  local entry = take(b)
  if entry then
    push(entry)
  end
end

-- Live: the hash exists. A session's hash expires at its deadline (the one in the bucket's
-- expiry set), and a key past its deadline does not exist for a script, even before the
-- server has removed it: no need to read the expiry set too.
local function matches(tag, member)
  local meta_key = tag .. 's:' .. member .. ':meta'
  if redis.call('EXISTS', meta_key) == 0 then
    return false
  end
  for i = 9, #ARGV, 2 do
    if redis.call('HGET', meta_key, 'm:' .. ARGV[i]) ~= ARGV[i + 1] then
      return false
    end
  end
  return true
end

local found = {}
local scanned = 0
local last_score, last_member = ARGV[4], ARGV[5]
while #found < want and scanned < budget and #heap > 0 do
  local entry = pop()
  local b = entry[3]
  scanned = scanned + 1
  last_score, last_member = entry[1], entry[2]
  local following = take(b)
  if following then
    push(following)
  end
  if matches(b.tag, entry[2]) then
    local row = {b.tag, entry[2], entry[1]}
    if details then
      local base = b.tag .. 's:' .. entry[2]
      row[4] = redis.call('HGETALL', base .. ':meta')
      row[5] = redis.call('LLEN', base .. ':items')
      row[6] = redis.call('PTTL', base .. ':meta')
    end
    found[#found + 1] = row
  end
end
local exhausted = 0
if #heap == 0 then
  exhausted = 1
end
return {exhausted, tostring(last_score), last_member, found, now}
