-- Shared by every session script. KEYS: items, meta, tokens, bucket index, bucket expiry,
-- bucket indexed metadata (see _index.lua, which follows this file).
local ITEMS, META, TOKENS = KEYS[1], KEYS[2], KEYS[3]
local INDEX, EXPIRY, INDEXED = KEYS[4], KEYS[5], KEYS[6]
local TAG = string.sub(INDEX, 1, -6) -- INDEX is TAG .. 'index'
-- Set by a script whose store indexes metadata: its writes move the value index entries too.
local INDEXING = false
