#!lua flags=no-writes
-- ARGV: base
-- Live sessions in the bucket: indexed ones minus those whose deadline has passed.
return redis.call('ZCARD', INDEX) - redis.call('ZCOUNT', EXPIRY, '-inf', now_ms())
