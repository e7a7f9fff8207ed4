-- finish: write the job's terminal state and append its outcome event, in one step, so
-- the record and the stream never disagree; only the first terminal transition of a job
-- writes (docs/delivery.md#the-delivery-record-heraldjobjob_id), and never while another
-- attempt holds the job's lease (that attempt ends the job). Drops the payload and the
-- job's due entry, and the lease if this attempt holds it; trims events older than the
-- stream's retention (HERALD_EVENTS_RETENTION_S) as it adds one.
-- Returns the event's stream entry id, or false when nothing was written.
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>
-- KEYS[3] events: the outcome stream (HERALD_EVENTS_STREAM, herald:events by default)
-- KEYS[4] due: the queue's due set herald:due:<queue>
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] outcome: the terminal state, 'sent' or 'failed'
-- ARGV[3] attempts: tries at the whole message
-- ARGV[4] parts: provider ids of the accepted parts by part index, as JSON
-- ARGV[5] retention_s: how long the record is kept after this change, in s
-- ARGV[6] job_id: the job's id, its member in the due set
-- ARGV[7] event: the entry's event name, message.sent or message.failed
-- ARGV[8] entry_job_id: the entry's job_id field ('' for a payload that is not an object)
-- ARGV[9] data: the entry's data field, the event as JSON
-- ARGV[10] keep_ms: how long the stream keeps an event (older ones are trimmed, roughly)

local record = KEYS[1]
local lease = KEYS[2]
local events = KEYS[3]
local due = KEYS[4]
local token = ARGV[1]
local outcome = ARGV[2]
local attempts = ARGV[3]
local parts = ARGV[4]
local retention_s = tonumber(ARGV[5])
local job_id = ARGV[6]
local event = ARGV[7]
local entry_job_id = ARGV[8]
local data = ARGV[9]
local keep_ms = tonumber(ARGV[10])

local state = redis.call('HGET', record, 'state')
if state == 'sent' or state == 'failed' then return false end
local holder = redis.call('GET', lease)
if holder and holder ~= token then return false end
redis.call('HSET', record, 'state', outcome, 'attempts', attempts, 'parts', parts)
redis.call('HDEL', record, 'payload')
redis.call('ZREM', due, job_id)
redis.call('EXPIRE', record, retention_s)
if holder then redis.call('DEL', lease) end
local oldest = math.max(0, now_ms() - keep_ms) .. '-0'
return redis.call(
  'XADD', events, 'MINID', '~', oldest, '*',
  'event', event, 'job_id', entry_job_id, 'data', data
)
