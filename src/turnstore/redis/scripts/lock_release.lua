-- KEYS[1]: the lock key. ARGV: holder token
-- Releases the lock only if the caller holds it (never someone else's). Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
