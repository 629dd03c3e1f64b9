-- politely: reserve one sitewide slot if every sitewide cap allows it.
--
-- KEYS[1]  the site's sorted set  politely:{site}:sitewide (member: invitation id,
--          score: its time)
-- ARGV  1 at   2 member   3 keep (trim times at or before at - keep; the TTL, s)
--       4.. limit, window pairs
-- Returns 1 when reserved, 0 when a cap is used up. The caller gives the slot
-- back (ZREM) if the visitor's commit then refuses or conflicts.

local key = KEYS[1]
local at = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if redis.call('ZCOUNT', key, '(' .. string.format('%.17g', at - window),
                string.format('%.17g', at)) >= limit then
    return 0
  end
end
local keep = tonumber(ARGV[3])
redis.call('ZADD', key, ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', at - keep))
redis.call('PEXPIRE', key, math.max(1000, math.ceil(keep * 1000)))
return 1
