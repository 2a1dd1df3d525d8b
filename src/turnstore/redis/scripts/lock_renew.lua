-- KEYS[1]: the lock key. ARGV: holder token, lease_ms
-- Extends the lease if the caller still holds the lock. Returns 1, or 0 when it lost it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
