#!lua flags=no-writes
-- ARGV: base, start, count
-- The live members of the bucket index, `count` entries from `start` (oldest first).
-- Returns {next start (0 when done), member...}.
local now = now_ms()
local start, count = tonumber(ARGV[2]), tonumber(ARGV[3])
local page = redis.call('ZRANGE', INDEX, start, start + count - 1)
local out = {#page == count and start + count or 0}
for _, member in ipairs(page) do
  if is_live(member, now) then
    out[#out + 1] = member
  end
end
return out
