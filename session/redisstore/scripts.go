package redisstore

import "github.com/redis/go-redis/v9"

// A session is one Redis hash, so that one script sees and changes all of
// it atomically and, in a Redis Cluster, it lives in one slot:
//
//	m:v  version            m:r  route
//	m:c  created (µs)       m:a  last access (µs)
//	m:i  idle timeout (µs)  m:d  deadline (µs, 0: none)
//	k:KEY  the value of KEY
//	w:KEY  the version that last wrote KEY (set or removed), for conflicts
//
// Times are microseconds since the Unix epoch by the Store's clock, passed
// in by the caller: exact in Lua's doubles, and the same clock Manager
// uses. The key's TTL is set from them (PEXPIRE, relative, so the server's
// clock does not matter) for Redis to drop sessions nobody uses; the
// scripts also check expiry themselves, so that an expired session is
// never used even before Redis drops it. Scripts touch only KEYS[1].

// prelude defines the helpers every script uses.
const prelude = `
local function corrupt(why)
  error({err = 'CORRUPT ' .. KEYS[1] .. ': ' .. why})
end
-- state returns the session's header, or nil and 'notfound' / 'expired'
-- (an expired session is deleted).
local function state(key, now)
  local m = redis.call('HMGET', key, 'm:v', 'm:a', 'm:i', 'm:d', 'm:r', 'm:c')
  if redis.call('EXISTS', key) == 0 then return nil, 'notfound' end
  local v, a, i, d, c = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4]), tonumber(m[6])
  local big = 9007199254740992 -- 2^53: integers beyond are not exact
  if not (v and a and i and d and c and m[5]) or v < 1 or a < 0 or i < 0 or d < 0 or c < 0 or
    v >= big or a >= big or i >= big or d >= big or c >= big then
    corrupt('not a session header')
  end
  if (d > 0 and now >= d) or (i > 0 and now >= a + i) then
    redis.call('DEL', key)
    return nil, 'expired'
  end
  return {v = v, a = a, i = i, d = d}
end
-- expire sets the key's TTL to when the session expires, if ever.
local function expire(key, now, s)
  local e = 0
  if s.i > 0 then e = s.a + s.i end
  if s.d > 0 and (e == 0 or s.d < e) then e = s.d end
  if e == 0 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, math.max(1, math.ceil((e - now) / 1000)))
  end
end
`

// createScript stores a new session at version 1.
// ARGV: now, route, created, last access, idle, deadline, n, n × (key, value).
var createScript = redis.NewScript(prelude + `
local key, now = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 1 then
  local ok, s = pcall(state, key, now)
  if not ok or s then return {'exists'} end
end
local s = {v = 1, a = tonumber(ARGV[4]), i = tonumber(ARGV[5]), d = tonumber(ARGV[6])}
redis.call('HSET', key, 'm:v', 1, 'm:r', ARGV[2], 'm:c', ARGV[3], 'm:a', ARGV[4], 'm:i', ARGV[5], 'm:d', ARGV[6])
local n, j = tonumber(ARGV[7]), 8
for _ = 1, n do
  redis.call('HSET', key, 'k:' .. ARGV[j], ARGV[j + 1], 'w:' .. ARGV[j], 1)
  j = j + 2
end
expire(key, now, s)
return {'ok', 1}
`)

// saveScript checks a delta's reads and merges it.
// ARGV: now, base, last access, read all (0/1),
// nr, nr × (key, present 0/1, value), ns, ns × (key, value), nd, nd × key.
var saveScript = redis.NewScript(prelude + `
local key, now, base = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local s, why = state(key, now)
if not s then return {why} end
if base > s.v then return {'badbase', s.v} end
if ARGV[4] == '1' and base ~= s.v then return {'conflict', '', s.v} end
local j = 6
for _ = 1, tonumber(ARGV[5]) do
  local got = redis.call('HGET', key, 'k:' .. ARGV[j])
  if ARGV[j + 1] == '1' then
    if got ~= ARGV[j + 2] then return {'conflict', ARGV[j], s.v} end
  elseif got then
    return {'conflict', ARGV[j], s.v}
  end
  j = j + 3
end
local v = s.v + 1
local res = {'ok', v}
local ns = tonumber(ARGV[j]); j = j + 1
for _ = 1, ns do
  local w = tonumber(redis.call('HGET', key, 'w:' .. ARGV[j]))
  if w and w > base then table.insert(res, ARGV[j]) end
  redis.call('HSET', key, 'k:' .. ARGV[j], ARGV[j + 1], 'w:' .. ARGV[j], v)
  j = j + 2
end
local nd = tonumber(ARGV[j]); j = j + 1
for _ = 1, nd do
  local w = tonumber(redis.call('HGET', key, 'w:' .. ARGV[j]))
  if w and w > base then table.insert(res, ARGV[j]) end
  redis.call('HDEL', key, 'k:' .. ARGV[j])
  redis.call('HSET', key, 'w:' .. ARGV[j], v)
  j = j + 1
end
if nd > 0 then
  -- Forget the oldest removed keys beyond 32, as memstore does.
  local fields, live, dead = redis.call('HKEYS', key), {}, {}
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == 'k:' then live[string.sub(f, 3)] = true end
  end
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == 'w:' and not live[string.sub(f, 3)] then table.insert(dead, f) end
  end
  if #dead > 32 then
    local vs = {}
    for _, f in ipairs(dead) do vs[f] = tonumber(redis.call('HGET', key, f)) or 0 end
    table.sort(dead, function(x, y)
      if vs[x] ~= vs[y] then return vs[x] < vs[y] end
      return x < y
    end)
    for n = 1, #dead - 32 do redis.call('HDEL', key, dead[n]) end
  end
end
local la = tonumber(ARGV[3])
if la > s.a then s.a = la end
redis.call('HSET', key, 'm:v', v, 'm:a', s.a)
expire(key, now, s)
return res
`)

// touchScript moves the last access forward. ARGV: now, at.
var touchScript = redis.NewScript(prelude + `
local key, now = KEYS[1], tonumber(ARGV[1])
local s, why = state(key, now)
if not s then return {why} end
local at = tonumber(ARGV[2])
if at > s.a then
  s.a = at
  redis.call('HSET', key, 'm:a', at)
end
expire(key, now, s)
return {'ok'}
`)

// claimScript sets the route and returns the whole hash, as loadScript.
// ARGV: now, route, max bytes.
var claimScript = redis.NewScript(prelude + `
local key, now = KEYS[1], tonumber(ARGV[1])
local s, why = state(key, now)
if not s then return {} end
redis.call('HSET', key, 'm:r', ARGV[2])
` + readAll)

// loadScript returns the whole hash (field, value, ...), refusing one
// larger than ARGV[1] bytes. It changes nothing.
var loadScript = redis.NewScript(readAll)

const readAll = `
local h = redis.call('HGETALL', KEYS[1])
local n, max = 0, tonumber(ARGV[#ARGV])
for _, x in ipairs(h) do n = n + #x end
if n > max then return redis.error_reply('TOOBIG ' .. KEYS[1] .. ' holds ' .. n .. ' bytes, more than ' .. max) end
return h
`

// deleteScript deletes a live session: 1 when it did, 0 when there was
// none (or it had expired). A record that is not a session is deleted.
// ARGV: now.
var deleteScript = redis.NewScript(prelude + `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local ok, s = pcall(state, key, tonumber(ARGV[1]))
if ok and not s then return 0 end
redis.call('DEL', key)
return 1
`)

// unlockScript deletes the lock KEYS[1] if it still holds ARGV[1].
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// extendScript renews the lock KEYS[1] for ARGV[2] ms if it still holds
// ARGV[1]: 1 when it did.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)
