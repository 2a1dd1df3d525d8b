-- ARGV: base
-- Sessions of the bucket whose deadline has passed: what purge_bucket would remove.
return redis.call('ZCOUNT', EXPIRY, '-inf', now_ms())
