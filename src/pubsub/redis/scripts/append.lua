-- Append one publication: the only step that assigns positions, so it is
-- atomic (one script) and every instance sees the same order.
-- KEYS[1] meta hash {e = epoch hex, o = last offset}
-- KEYS[2] stream of envelopes, entry IDs 0-<offset>
-- KEYS[3] idempotency key (only read/written when ARGV[7] == '1')
-- ARGV[1] epoch to create when the meta is missing (hex)
-- ARGV[2] envelope body (everything after the position)
-- ARGV[3] history size (MAXLEN ~)
-- ARGV[4] history TTL, ms (meta and stream)
-- ARGV[5] idempotency TTL, ms
-- ARGV[6] pub/sub channel
-- ARGV[7] '1' when the request has an idempotency key
-- Returns {'dup', stored envelope} or {'new', position text}.
if ARGV[7] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return {'dup', seen}
  end
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  -- A new history (first publish, FLUSHALL, restart, expiry): a stream
  -- left from an old one must not mix with the new offsets. The server's
  -- run id is recorded so that since.lua can tell a history restored
  -- from a snapshot by a later run (INFO is not cheap: only here, on
  -- the rare creation path, and on reads).
  epoch = ARGV[1]
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0, 'r', run)
end
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 'o', 1))
local pos = epoch .. '-' .. offset
local env = string.char(1, #pos) .. pos .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. offset, 'd', env)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[7] == '1' then
  redis.call('SET', KEYS[3], env, 'PX', ARGV[5])
end
redis.call('PUBLISH', ARGV[6], env)
return {'new', pos}
