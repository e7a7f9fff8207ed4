-- claim: take the job's lease for this attempt, unless the job has ended or another
-- attempt holds the lease. A record left 'sending' with no lease means an earlier attempt
-- was cut off after its claim, maybe mid-send: this claim is in doubt, and counted.
-- A job without a record (enqueued by a plain Celery client) gets one here, with its
-- payload, so that from now on the sweeper can publish it again; the job is due in its
-- queue's due set when the lease ends. The queue's watermark moves up to the job's queue
-- time (herald/core/sweeper.py reads it).
-- Returns {'done', state}, {'busy', seconds the lease still runs}, or
-- {'claimed', attempts, first_seen, parts as JSON, in_doubt '0' | '1'}.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>, holding the token of its attempt
-- KEYS[3] stats: the fleet's counters hash herald:stats
-- KEYS[4] due: the queue's due set herald:due:<queue>
-- KEYS[5] watermark: the queue's claim watermark herald:watermark:<queue>
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] lease_s: how long the lease lasts, in s
-- ARGV[3] retention_s: how long the record is kept after this change, in s
-- ARGV[4] now: the time the job was received (ISO 8601), its first_seen if it has none
-- ARGV[5] job_id: the job's id, its member in the due set
-- ARGV[6] payload: the job as JSON (with its job_id), kept if the record has none
-- ARGV[7] queue: the queue the job came from
-- ARGV[8] expires: the message's Celery expires (ISO 8601), or ''

local record = KEYS[1]
local lease = KEYS[2]
local stats = KEYS[3]
local due = KEYS[4]
local watermark = KEYS[5]
local token = ARGV[1]
local lease_s = tonumber(ARGV[2])
local retention_s = tonumber(ARGV[3])
local now = ARGV[4]
local job_id = ARGV[5]
local payload = ARGV[6]
local queue = ARGV[7]
local expires = ARGV[8]

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
redis.call('HSET', record, 'state', 'sending', 'queue', queue)
redis.call('HSETNX', record, 'first_seen', now)
redis.call('HSETNX', record, 'payload', payload)
if expires ~= '' then redis.call('HSET', record, 'expires', expires) end
if in_doubt == 1 then
  redis.call('HINCRBY', record, 'in_doubt', 1)
  redis.call('HINCRBY', stats, 'in_doubt', 1)
end
redis.call('EXPIRE', record, retention_s)
redis.call('ZADD', due, now_ms() + lease_s * 1000, job_id)
local queued = tonumber(redis.call('HGET', record, 'queued_ms') or 0)
if queued > tonumber(redis.call('GET', watermark) or 0) then
  redis.call('SET', watermark, queued)
end
local fields = redis.call('HMGET', record, 'attempts', 'first_seen', 'parts')
return {'claimed', fields[1] or '0', fields[2], fields[3] or '{}', tostring(in_doubt)}
