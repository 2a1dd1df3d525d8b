#!lua flags=no-writes
-- ARGV: count
-- The newest `count` items, oldest first, and the list's length: {length, {item...}}.
-- Costs O(count), whatever the length of the history.
return {redis.call('LLEN', ITEMS), redis.call('LRANGE', ITEMS, -tonumber(ARGV[1]), -1)}
