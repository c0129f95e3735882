-- Read a channel's epoch, top offset and the entries after an offset in
-- one atomic step, so the three agree.
-- KEYS[1] meta hash, KEYS[2] stream
-- ARGV[1] epoch to create when the meta is missing (hex)
-- ARGV[2] history TTL, ms (for a created meta)
-- ARGV[3] the caller's epoch ('' for a new subscriber: no entries)
-- ARGV[4] the caller's offset
-- ARGV[5] the caller's limit
-- ARGV[6] the first stream ID wanted, '0-<offset + 1>'
-- Returns {epoch, top offset, envelope...}: the entries after the offset,
-- read only when the epoch matches and at most `limit` are missing (the
-- caller checks that they are all there).
-- A meta from another server run may be a restored snapshot that lost
-- writes (see append.lua): it does not count.
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local m = redis.call('HMGET', KEYS[1], 'e', 'o', 'r')
local epoch, top = m[1], m[2]
if not epoch or m[3] ~= run then
  -- Create the epoch now, so a position handed out as "the top" before
  -- the first publish is in the history that publish will extend.
  epoch, top = ARGV[1], '0'
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0, 'r', run)
end
-- Reading keeps a quiet channel's history alive (the subscribed
-- instances read it at every sync): only unused histories expire.
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local out = {epoch, top}
if ARGV[3] ~= epoch then
  return out
end
local after = tonumber(ARGV[4])
local missing = tonumber(top) - after
if missing <= 0 or missing > tonumber(ARGV[5]) then
  return out
end
local entries = redis.call('XRANGE', KEYS[2], ARGV[6], '+', 'COUNT', missing)
for _, e in ipairs(entries) do
  out[#out + 1] = e[2][2]
end
return out
