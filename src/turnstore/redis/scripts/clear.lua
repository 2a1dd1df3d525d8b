-- ARGV: member
-- Deletes the session's items, metadata and index entries. Returns 1 if it existed.
-- Batch tokens stay until they expire, so a batch resent after the clear is not re-applied.
local existed = redis.call('DEL', ITEMS, META)
redis.call('ZREM', INDEX, ARGV[1])
redis.call('ZREM', EXPIRY, ARGV[1])
drop_indexed(ARGV[1])
if existed > 0 then
  return 1
end
return 0
