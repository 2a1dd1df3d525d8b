-- ARGV: base, batch
-- Removes up to `batch` sessions whose deadline has passed (see remove_expired).
-- Returns {removed, more}.
local removed = remove_expired(now_ms(), tonumber(ARGV[2]))
local more = 0
if removed == tonumber(ARGV[2]) then
  more = 1
end
return {removed, more}
