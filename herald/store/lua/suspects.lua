-- suspects: pending jobs that may have been lost by the broker, the first step of a
-- reaper sweep (docs/delivery.md#the-reaper-jobs-the-broker-lost): enqueued more than
-- min_age_ms ago and, while the queue is not empty, more than slack_ms before the newest
-- claimed job (a queue is consumed in order). Returns job_id, score pairs, oldest first.
--
-- KEYS[1] pending: the queue's pending set herald:pending:<queue>
-- KEYS[2] watermark: the queue's claim watermark herald:pending:<queue>:watermark
-- KEYS[3] queue: the queue's Redis list (kombu's), named as the queue
-- ARGV[1] min_age_ms: how old a pending job must be, in ms
-- ARGV[2] slack_ms: how far behind the watermark it must be while the queue is not empty
-- ARGV[3] limit: at most this many suspects

local pending = KEYS[1]
local watermark = KEYS[2]
local queue = KEYS[3]
local min_age_ms = tonumber(ARGV[1])
local slack_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])

local before = now_ms() - min_age_ms
if redis.call('LLEN', queue) > 0 then
  -- Jobs may still wait in the queue: only those well behind the newest claim are gone.
  local newest = tonumber(redis.call('GET', watermark) or 0)
  before = math.min(before, newest - slack_ms)
end
return redis.call('ZRANGEBYSCORE', pending, '-inf', before, 'WITHSCORES', 'LIMIT', 0, limit)
