-- ARGV: member
-- Deletes every key of the session and its index entries. Returns 1 if it existed.
local existed = redis.call('DEL', ITEMS, META, TOKENS)
redis.call('ZREM', INDEX, ARGV[1])
redis.call('ZREM', EXPIRY, ARGV[1])
if existed > 0 then
  return 1
end
return 0
