-- KEYS[1]: the lock key. ARGV: holder token, lease_ms
-- Takes the lock unless another holder has it. A caller that already holds it (its first
-- attempt ran but the reply was lost) gets it again, with a fresh lease. Returns 1 or 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
