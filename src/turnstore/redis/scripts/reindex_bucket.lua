-- ARGV: base, scan cursor ('0' to start), count, indexed_key...
-- Indexes up to about `count` sessions of the bucket by their values of the indexed keys
-- (dropping entries of keys no longer indexed), from a ZSCAN cursor of the bucket index:
-- every session that stays in the index while the bucket is walked is visited, whatever
-- writes move it meanwhile. Returns {next cursor ('0' when done), sessions whose entries
-- changed}.
local keys = {}
for i = 4, #ARGV do
  keys[#keys + 1] = ARGV[i]
end
local reply = redis.call('ZSCAN', INDEX, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local entries = reply[2]
local now = now_ms()
local changed = 0
for i = 1, #entries, 2 do
  local member = entries[i]
  if is_live(member, now)
    and sync_indexed(member, BASE .. member .. ':meta', keys, tonumber(entries[i + 1])) then
    changed = changed + 1
  end
end
return {reply[1], changed}
