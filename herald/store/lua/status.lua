-- status: emit a delivery status of a message Herald sent, at most once per message and
-- status and never moving the message back: ranks are delivered or undelivered 1, read 2,
-- and a status is news only above the message's rank (no delivered after read). A status
-- of a message whose send is not recorded yet (the webhook beat the worker) waits on the
-- message's record, for sent.lua to emit with the job_id; one of a message Herald did not
-- send is forgotten when the record expires (docs/webhooks.md#statuses).
-- Returns the entry id, 'waiting', or false when the status was not news.
--
-- KEYS[1] message: the message's record herald:message:<channel_id>:<provider id>
-- KEYS[2] statuses: the status stream (HERALD_STATUS_STREAM, herald:statuses by default)
-- ARGV[1] rank: the status's rank, 1 (delivered, undelivered) or 2 (read)
-- ARGV[2] event: the entry's event name, message.delivered, .read or .undelivered
-- ARGV[3] data: the entry's data as JSON without its job_id: the members after the "{"
-- ARGV[4] job_hint: the job_id the webhook itself carries (SendGrid's custom_args), or ''
-- ARGV[5] keep_ms: how long a known message is remembered, and the stream keeps a status
-- ARGV[6] wait_ms: how long a status of a message not yet recorded waits for its send

local message = KEYS[1]
local statuses = KEYS[2]
local rank = tonumber(ARGV[1])
local event = ARGV[2]
local data = ARGV[3]
local job_hint = ARGV[4]
local keep_ms = tonumber(ARGV[5])
local wait_ms = tonumber(ARGV[6])

if rank <= tonumber(redis.call('HGET', message, 'rank') or 0) then return false end
redis.call('HSET', message, 'rank', rank)
local job_id = redis.call('HGET', message, 'job_id')
if not job_id and job_hint ~= '' then
  job_id = job_hint
  redis.call('HSET', message, 'job_id', job_id)
end
if not job_id then
  redis.call('HSET', message, 'pending:' .. rank, event .. '\n' .. data)
  if redis.call('PTTL', message) < wait_ms then redis.call('PEXPIRE', message, wait_ms) end
  return 'waiting'
end
redis.call('PEXPIRE', message, keep_ms)
local oldest = math.max(0, now_ms() - keep_ms) .. '-0'
return redis.call(
  'XADD', statuses, 'MINID', '~', oldest, '*',
  'event', event, 'job_id', job_id, 'data', '{"job_id":' .. cjson.encode(job_id) .. ',' .. data
)
