-- progress: record the attempts and the parts a provider has accepted, while this attempt
-- holds the lease, so a retry never sends those parts again; renews the lease, and moves
-- the job's due time to the lease's new end.
-- Returns 1, or 0 when the lease is no longer this attempt's (nothing written).
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>
-- KEYS[3] due: the queue's due set herald:due:<queue>
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] attempts: tries at the whole message so far
-- ARGV[3] parts: provider ids of the accepted parts by part index, as JSON
-- ARGV[4] lease_s: how long the renewed lease lasts, in s
-- ARGV[5] job_id: the job's id, its member in the due set

local record = KEYS[1]
local lease = KEYS[2]
local due = KEYS[3]
local token = ARGV[1]
local attempts = ARGV[2]
local parts = ARGV[3]
local lease_s = tonumber(ARGV[4])
local job_id = ARGV[5]

if redis.call('GET', lease) ~= token then return 0 end
redis.call('HSET', record, 'attempts', attempts, 'parts', parts)
redis.call('EXPIRE', lease, lease_s)
redis.call('ZADD', due, now_ms() + lease_s * 1000, job_id)
return 1
