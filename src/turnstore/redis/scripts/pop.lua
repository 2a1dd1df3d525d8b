-- KEYS[7]: this call's receipt key.
-- ARGV: member, session_id, ttl_ms, skip_corrupt ('1' or '0'), tombstone, receipt_ttl_ms
-- Removes the newest item that decodes as a JSON object and returns {item, position}.
-- A corrupt newest item is skipped (and left in place) when skip_corrupt is '1'; otherwise
-- the script stops there and returns {item, position, 1} without removing anything.
-- The result is kept under the call's receipt key for a while: a retry of the same call
-- (its reply lost) gets the same item back instead of popping a second one.
local RECEIPT = KEYS[7]
INDEXING = true
local receipt = redis.call('GET', RECEIPT)
if receipt then
  local cut = string.find(receipt, '\n', 1, true)
  return {string.sub(receipt, cut + 1), tonumber(string.sub(receipt, 1, cut - 1))}
end
local len = redis.call('LLEN', ITEMS)
for offset = -1, -len, -1 do
  local raw = redis.call('LINDEX', ITEMS, offset)
  local ok, value = pcall(cjson.decode, raw)
  if ok and type(value) == 'table' and string.sub(raw, 1, 1) == '{' then
    if offset == -1 then
      redis.call('RPOP', ITEMS)
    else
      redis.call('LSET', ITEMS, offset, ARGV[5])
      redis.call('LREM', ITEMS, -1, ARGV[5])
    end
    mark_written(ARGV[1], ARGV[2], now_ms(), ARGV[3])
    redis.call('SET', RECEIPT, (len + offset) .. '\n' .. raw, 'PX', ARGV[6])
    return {raw, len + offset}
  end
  if ARGV[4] ~= '1' then
    return {raw, len + offset, 1}
  end
end
return false
