-- gcra: take one slot from every bucket of a provider call, or none
-- (docs/delivery.md#fleet-wide-rate-limits).
-- Each bucket is a GCRA "theoretical arrival time" (tat) in ms: a call at now fits when
-- tat - now <= burst * interval_ms. Either every bucket allows the call and each moves on
-- by its interval, or none is touched, so a refused call costs no bucket a slot.
-- Returns 0 when the slots were taken, else the ms to wait for all buckets to allow it.
--
-- KEYS[1..] buckets: the GCRA buckets herald:rate:<scope> of the call (one or two)
-- ARGV[1..] limits: interval_ms, burst pairs, one per bucket, in buckets' order; burst is
--   how many calls beyond the steady rate the bucket allows at once

local buckets = KEYS
local limits = ARGV

if #limits ~= 2 * #buckets then
  return redis.error_reply('gcra: one interval_ms, burst pair per bucket')
end
local now = now_ms()
local wait = 0
local tats = {}
for i, bucket in ipairs(buckets) do
  local interval, burst = tonumber(limits[2 * i - 1]), tonumber(limits[2 * i])
  local tat = math.max(tonumber(redis.call('GET', bucket) or now), now)
  local allowed_at = tat - burst * interval
  if allowed_at - now > wait then wait = allowed_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return math.ceil(wait) end
for i, bucket in ipairs(buckets) do
  local interval = tonumber(limits[2 * i - 1])
  redis.call('SET', bucket, tats[i], 'PX', math.ceil(tats[i] - now + interval))
end
return 0
