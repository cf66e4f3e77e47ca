"""The Lua scripts of the Redis store: each multi-step call, atomic, on Redis's own clock (TIME).

Times are milliseconds since the epoch from ``TIME``. Job states: waiting, leased, replying, done.
A leased or replying job whose lease end is not after now may be claimed again.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

RATE = (
    _NOW
    + """
-- KEYS: rate zset, told marker. ARGV: limit, window ms, unique member.
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 'quiet' end
  redis.call('SET', KEYS[2], '1', 'PX', window)
  return 'tell'
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 'allow'
"""
)

RATE_EXTRA = (
    _NOW
    + """
-- KEYS: rate zset. ARGV: wanted, limit, window ms, unique member prefix.
local wanted, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local granted = math.max(0, math.min(wanted, limit - redis.call('ZCARD', KEYS[1])))
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[4] .. ':' .. i)
end
if granted > 0 then redis.call('PEXPIRE', KEYS[1], window) end
return granted
"""
)

SUBMIT = (
    _NOW
    + """
-- KEYS: job hash, waiting zset, leases zset, seq counter.
-- ARGV: id, payload, max waiting, worker ('' to wait), lease ms, token.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'known' end
if ARGV[4] ~= '' then
  local lease_end = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'payload', ARGV[2], 'state', 'leased', 'token', ARGV[6],
    'attempt', 1, 'worker', ARGV[4], 'lease_until', lease_end)
  redis.call('ZADD', KEYS[3], lease_end, ARGV[1])
  return 'claimed'
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'busy' end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'payload', ARGV[2], 'state', 'waiting', 'attempt', 0)
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return 'waiting'
"""
)

CLAIM = (
    _NOW
    + """
-- KEYS: waiting zset, leases zset. ARGV: job key prefix, worker, lease ms, token.
local id
local run_out = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, 1)
if #run_out > 0 then
  id = run_out[1]
else
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #oldest == 0 then return false end
  id = oldest[1]
  redis.call('ZREM', KEYS[1], id)
end
local key = ARGV[1] .. id
local lease_end = now + tonumber(ARGV[3])
local attempt = redis.call('HINCRBY', key, 'attempt', 1)
redis.call('HSET', key, 'state', 'leased', 'token', ARGV[4], 'worker', ARGV[2],
  'lease_until', lease_end)
redis.call('ZADD', KEYS[2], lease_end, id)
return {id, redis.call('HGET', key, 'payload'), attempt}
"""
)

BEGIN = (
    _NOW
    + """
-- KEYS: job hash, leases zset. ARGV: token, lease ms, id, new state ('' keeps it).
local held = redis.call('HMGET', KEYS[1], 'token', 'state')
if held[1] ~= ARGV[1] or (held[2] ~= 'leased' and held[2] ~= 'replying') then return 0 end
local lease_end = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'lease_until', lease_end)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[4]) end
redis.call('ZADD', KEYS[2], lease_end, ARGV[3])
return 1
"""
)

FINISH = """
-- KEYS: job hash, leases zset, waiting zset. ARGV: id, ms a done job is kept.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done')
redis.call('HDEL', KEYS[1], 'token', 'lease_until', 'payload')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

REMEMBER = (
    _NOW
    + """
-- KEYS: a sender's picture index (sorted set of JSON entries by time recorded, ms).
-- ARGV: entry, entries kept, max age ms, the entry's object key.
local age = tonumber(ARGV[3])
-- One entry per object key, whatever its other fields (the set holds at most ``kept``).
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local ok, fields = pcall(cjson.decode, member)
  if ok and type(fields) == 'table' and fields['key'] == ARGV[4] then return 0 end
end
-- A later entry is always the newer one, even within one millisecond.
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #newest > 0 and tonumber(newest[2]) >= now then now = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - age)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], age)
return 1
"""
)

RECENT = (
    _NOW
    + """
-- KEYS: a sender's picture index. ARGV: most entries, max age ms. Newest first, with scores.
local oldest = '(' .. (now - tonumber(ARGV[2]))
return redis.call('ZRANGE', KEYS[1], '+inf', oldest, 'BYSCORE', 'REV', 'LIMIT', 0,
  tonumber(ARGV[1]), 'WITHSCORES')
"""
)
