-- retry: schedule the job's next try (docs/delivery.md#retries): record its attempts and
-- accepted parts, hand the lease back, and make the job due in its queue's due set when
-- the wait is over; the sweeper then publishes it again. Nothing is held in a worker's
-- memory meanwhile. Returns 1, or 0 when the lease is no longer this attempt's.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>
-- KEYS[3] due: the queue's due set herald:due:<queue>
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] attempts: tries at the whole message so far
-- ARGV[3] parts: provider ids of the accepted parts by part index, as JSON
-- ARGV[4] after_ms: how long to wait before the next try, in ms
-- ARGV[5] job_id: the job's id, its member in the due set

local record = KEYS[1]
local lease = KEYS[2]
local due = KEYS[3]
local token = ARGV[1]
local attempts = ARGV[2]
local parts = ARGV[3]
local after_ms = tonumber(ARGV[4])
local job_id = ARGV[5]

if redis.call('GET', lease) ~= token then return 0 end
redis.call('HSET', record, 'attempts', attempts, 'parts', parts, 'state', 'retrying')
redis.call('DEL', lease)
redis.call('ZADD', due, now_ms() + after_ms, job_id)
return 1
