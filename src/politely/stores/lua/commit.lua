-- politely: one visitor's atomic commit (politely.stores.base, module docstring).
--
-- KEYS[1]  the visitor's hash  politely:{site:visitor}
-- KEYS[2]  optional: the site's stats hash (a single Redis; on a Cluster the
--          caller adds the returned outcome's counts itself)
-- KEYS[3]  optional: the site's sitewide sorted set, to give a reserved slot
--          back when the claim is refused or conflicts (a single Redis)
-- ARGV  1 expected version   2 at   3 keep_for ("inf": forever)
--       4 "1" if a profile follows, else "0"   5 profile bytes
--       6 claim: "" or msgpack [id, at, rule, variant, session, keep_for,
--         [[limit, window, rule], ...], refused]  (refused: the sitewide
--         reservation already failed, so the claim is refused outright)
--       7 remember: "" or msgpack [event_id, keep_for, keep_at_most, has_refused]
--       8 decision bytes   9 refused decision bytes
--       10 msgpack [field, ...] counts   11 msgpack [field, ...] refused counts
--       12 the reserved sitewide member to give back ("" if none)
-- Returns "applied", "refused" or "conflict".
--
-- The history layout is politely.codec's; admit() and remember() mirror
-- politely.stores.contract exactly (tests compare both on random claims).

if redis.replicate_commands then redis.replicate_commands() end

local key = KEYS[1]
local function num(s) if s == 'inf' then return math.huge end return tonumber(s) end

local function give_back()
  if KEYS[3] and ARGV[12] ~= '' then redis.call('ZREM', KEYS[3], ARGV[12]) end
end

local at = tonumber(ARGV[2])
local stored = redis.call('HMGET', key, 'v', 'x', 'h', 's')
local version = tonumber(stored[1] or '0') or 0
if stored[1] and stored[2] and num(stored[2]) <= at then
  -- expired on the engine's clock: the visitor comes back new
  redis.call('DEL', key)
  version, stored = 0, {}
end
if version ~= tonumber(ARGV[1]) then
  give_back()
  return 'conflict'
end

-- byte order, as Python sorts str (never the locale's strcoll)
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function decode_history(data)
  local log = {recent = {}, session = nil, session_count = 0, ever = 0,
               rules = {}, in_session = {}, ever_by = {}, variant = {}}
  if not data then return log end
  local h = cmsgpack.unpack(data)
  if h[1] ~= 1 then error('politely: unknown history version') end
  log.recent = h[2] or {}
  log.session = h[3]
  log.session_count = h[4] or 0
  log.ever = h[5] or 0
  for _, r in ipairs(h[6] or {}) do
    local rule = r[1]
    table.insert(log.rules, rule)
    log.in_session[rule] = r[2] or 0
    log.ever_by[rule] = r[3] or 0
    log.variant[rule] = r[4] or 0
  end
  return log
end

local function encode_history(log)
  local by_rule = {}
  for _, rule in ipairs(log.rules) do
    table.insert(by_rule, {rule, log.in_session[rule] or 0, log.ever_by[rule] or 0,
                           log.variant[rule] or 0})
  end
  return cmsgpack.pack({1, log.recent, log.session, log.session_count, log.ever, by_rule})
end

-- caps.Cap.count
local function count(log, window, rule, session, now)
  if window == 'session' then
    if session == nil or session ~= log.session then return 0 end
    if rule == nil then return log.session_count end
    return log.in_session[rule] or 0
  elseif window == 'visitor' then
    if rule == nil then return log.ever end
    return log.ever_by[rule] or 0
  end
  local n = 0
  for i = #log.recent, 1, -1 do
    local r = log.recent[i]
    if rule == nil or r[3] == rule then
      if r[2] + window <= now then break end
      n = n + 1
    end
  end
  return n
end

-- contract.admit: the new history, or nil when a cap refuses
local function admit(data, claim)
  local log = decode_history(data)
  local id, rat, rule, variant, session, keep_for = claim[1], claim[2], claim[3], claim[4],
    claim[5], claim[6]
  for _, cap in ipairs(claim[7]) do
    if count(log, cap[2], cap[3], session, rat) >= cap[1] then return nil end
  end
  -- state.InvitationLog.record
  if session ~= log.session then
    log.session = session
    log.session_count = 0
    log.in_session = {}
  end
  log.session_count = log.session_count + 1
  log.in_session[rule] = (log.in_session[rule] or 0) + 1
  log.ever = log.ever + 1
  if log.ever_by[rule] == nil and log.variant[rule] == nil then
    local pos = #log.rules + 1
    for i, other in ipairs(log.rules) do
      if less(rule, other) then pos = i break end
    end
    table.insert(log.rules, pos, rule)
  end
  log.ever_by[rule] = (log.ever_by[rule] or 0) + 1
  log.variant[rule] = variant
  table.insert(log.recent, {id, rat, rule, variant, session})
  local horizon = rat - keep_for
  while #log.recent > 8 and log.recent[1][2] <= horizon do
    table.remove(log.recent, 1)
  end
  return encode_history(log)
end

local outcome = 'applied'
if ARGV[6] ~= '' then
  local claim = cmsgpack.unpack(ARGV[6])
  local admitted = nil
  if not claim[8] then admitted = admit(stored[3], claim) end
  if admitted == nil then
    outcome = 'refused'
    give_back()
  else
    redis.call('HSET', key, 'h', admitted)
  end
end

-- contract.remember: ids in insertion order, field "e:<id>" = "<at>\n<decision>"
if ARGV[7] ~= '' then
  local entry = cmsgpack.unpack(ARGV[7])
  local event_id, keep, most = entry[1], entry[2], entry[3]
  local old = {}
  if stored[4] then old = cmsgpack.unpack(stored[4]) end
  local kept = {}
  for _, seen in ipairs(old) do
    if at - seen[2] < keep and seen[1] ~= event_id then
      table.insert(kept, seen)
    elseif seen[1] ~= event_id then
      redis.call('HDEL', key, 'e:' .. seen[1])
    end
  end
  table.insert(kept, {event_id, at})
  while #kept > most do
    redis.call('HDEL', key, 'e:' .. kept[1][1])
    table.remove(kept, 1)
  end
  local decision = ARGV[8]
  if outcome == 'refused' and entry[4] then decision = ARGV[9] end
  redis.call('HSET', key, 's', cmsgpack.pack(kept), 'e:' .. event_id, ARGV[2] .. '\n' .. decision)
end

if ARGV[4] == '1' then redis.call('HSET', key, 'p', ARGV[5]) end

-- a new visitor (or one that came back) takes a version from the server's clock,
-- so a forgotten visitor never reuses one; then it counts up
local new_version
if version == 0 then
  local t = redis.call('TIME')
  new_version = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  new_version = version + 1
end

-- kept keep_for after this write on the engine's clock (x), and as long on the server's (TTL)
local keep_for = num(ARGV[3])
local expires = at + keep_for
if stored[2] and num(stored[2]) > expires then expires = num(stored[2]) end
local x = 'inf'
if expires ~= math.huge then x = string.format('%.17g', expires) end
redis.call('HSET', key, 'v', string.format('%d', new_version), 'x', x)
if x == 'inf' then
  redis.call('PERSIST', key)
else
  local ttl = math.ceil(keep_for * 1000)
  local current = redis.call('PTTL', key)
  if current < 0 or ttl > current then redis.call('PEXPIRE', key, ttl) end
end

if KEYS[2] then
  local fields = cmsgpack.unpack(outcome == 'refused' and ARGV[11] or ARGV[10])
  for _, field in ipairs(fields) do redis.call('HINCRBY', KEYS[2], field, 1) end
end
return outcome
