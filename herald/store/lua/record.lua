-- record: note a job as queued before it is published, so that the sweeper can publish it
-- again if the broker loses it (docs/delivery.md#the-sweeper). Creates the job's record in
-- state 'queued' with its payload, queue and queue time, and its entry in the queue's due
-- set, due once the margin has passed; a job that has a record already keeps it (a second
-- enqueue of the same job_id only renews the expiry). Returns now, in ms.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] due: the queue's due set herald:due:<queue>
-- ARGV[1] job_id: the job's id, its member in the due set
-- ARGV[2] payload: the job as JSON, for the sweeper to publish again
-- ARGV[3] queue: the queue the job is published to
-- ARGV[4] margin_ms: how long a queued job may go unclaimed before it is looked at
-- ARGV[5] retention_s: how long the record is kept after this change, in s

local record = KEYS[1]
local due = KEYS[2]
local job_id = ARGV[1]
local payload = ARGV[2]
local queue = ARGV[3]
local margin_ms = tonumber(ARGV[4])
local retention_s = tonumber(ARGV[5])

local now = now_ms()
if redis.call('HSETNX', record, 'state', 'queued') == 1 then
  redis.call('HSET', record, 'payload', payload, 'queue', queue, 'queued_ms', now)
  redis.call('ZADD', due, 'NX', now + margin_ms, job_id)
end
redis.call('EXPIRE', record, retention_s)
return now
