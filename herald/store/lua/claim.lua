-- claim: take the job's lease for this attempt, unless the job has ended or another
-- attempt holds the lease. A record left 'sending' with no lease means an earlier attempt
-- was cut off after its claim, maybe mid-send: this claim is in doubt, and counted.
-- A claim also takes the job out of its queue's pending set and moves the queue's
-- watermark up to the job's enqueue time (the reaper reads both: herald/store/pending.py).
-- Returns {'done', state}, {'busy', seconds the lease still runs}, or
-- {'claimed', attempts, first_seen, parts as JSON, in_doubt '0' | '1'}.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>, holding the token of its attempt
-- KEYS[3] stats: the fleet's counters hash herald:stats
-- KEYS[4] pending: the queue's pending set herald:pending:<queue>
-- KEYS[5] watermark: the queue's claim watermark herald:pending:<queue>:watermark
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] lease_s: how long the lease lasts, in s
-- ARGV[3] retention_s: how long the record is kept after this change, in s
-- ARGV[4] now: the time the job was received (ISO 8601), its first_seen if it has none
-- ARGV[5] job_id: the job's id, its member in the pending set

local record = KEYS[1]
local lease = KEYS[2]
local stats = KEYS[3]
local pending = KEYS[4]
local watermark = KEYS[5]
local token = ARGV[1]
local lease_s = tonumber(ARGV[2])
local retention_s = tonumber(ARGV[3])
local now = ARGV[4]
local job_id = ARGV[5]

local state = redis.call('HGET', record, 'state')
if state == 'sent' or state == 'failed' then
  return {'done', state}
end
local holder = redis.call('GET', lease)
if holder and holder ~= token then
  return {'busy', tostring(redis.call('TTL', lease))}
end
local in_doubt = 0
if state == 'sending' and not holder then in_doubt = 1 end
redis.call('SET', lease, token, 'EX', lease_s)
redis.call('HSET', record, 'state', 'sending')
redis.call('HSETNX', record, 'first_seen', now)
if in_doubt == 1 then
  redis.call('HINCRBY', record, 'in_doubt', 1)
  redis.call('HINCRBY', stats, 'in_doubt', 1)
end
redis.call('EXPIRE', record, retention_s)
local enqueued = redis.call('ZSCORE', pending, job_id)
if enqueued then
  redis.call('ZREM', pending, job_id)
  if tonumber(enqueued) > tonumber(redis.call('GET', watermark) or 0) then
    redis.call('SET', watermark, enqueued)
  end
end
local fields = redis.call('HMGET', record, 'attempts', 'first_seen', 'parts')
return {'claimed', fields[1] or '0', fields[2], fields[3] or '{}', tostring(in_doubt)}
