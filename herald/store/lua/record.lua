-- record: note a job as pending before it is published, so that the reaper can publish
-- it again if the broker loses it (docs/delivery.md#the-reaper-jobs-the-broker-lost).
-- Creates the job's record in state 'pending' with its payload, and its entry in the queue's
-- pending set scored by now; a job that has a record already keeps it (a second enqueue
-- of the same job_id only renews the expiry). Returns now, in ms.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] pending: the queue's pending set herald:pending:<queue>
-- ARGV[1] job_id: the job's id, its member in the pending set
-- ARGV[2] payload: the job as JSON, for the reaper to publish again
-- ARGV[3] retention_s: how long the record is kept after this change, in s

local record = KEYS[1]
local pending = KEYS[2]
local job_id = ARGV[1]
local payload = ARGV[2]
local retention_s = tonumber(ARGV[3])

local now = now_ms()
if redis.call('HSETNX', record, 'state', 'pending') == 1 then
  redis.call('HSET', record, 'payload', payload)
  redis.call('ZADD', pending, 'NX', now, job_id)
end
redis.call('EXPIRE', record, retention_s)
return now
