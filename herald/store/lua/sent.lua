-- sent: remember a message Herald sent, by its provider's id: the job it belongs to, and
-- when it went to the contact (receipts that mark every earlier message read this). A
-- status that came before the send was recorded (kept by status.lua) is emitted now, with
-- the job_id (docs/webhooks.md#statuses). A record of another job under the same id is
-- stale (a provider does not reuse ids; a sandbox restarted on the same Redis does) and is
-- dropped first.
-- Returns how many waiting statuses were emitted.
--
-- KEYS[1] message: the message's record herald:message:<channel_id>:<provider id>
-- KEYS[2] sent: the contact's sent messages herald:sent:<channel_id>:<identity>
-- KEYS[3] statuses: the status stream (HERALD_STATUS_STREAM, herald:statuses by default)
-- ARGV[1] job_id: the job that sent the message
-- ARGV[2] message_id: the provider's id of the message, its member in the sent set
-- ARGV[3] keep_ms: how long the message is remembered, and the stream keeps a status

local message = KEYS[1]
local sent = KEYS[2]
local statuses = KEYS[3]
local job_id = ARGV[1]
local message_id = ARGV[2]
local keep_ms = tonumber(ARGV[3])

local now = now_ms()
local known = redis.call('HGET', message, 'job_id')
if known and known ~= job_id then redis.call('DEL', message) end
redis.call('HSET', message, 'job_id', job_id)
redis.call('PEXPIRE', message, keep_ms)
redis.call('ZADD', sent, 'NX', now, message_id)
redis.call('ZREMRANGEBYSCORE', sent, '-inf', now - keep_ms)
redis.call('PEXPIRE', sent, keep_ms)
local oldest = math.max(0, now - keep_ms) .. '-0'
local emitted = 0
for rank = 1, 2 do
  local field = 'pending:' .. rank
  local waiting = redis.call('HGET', message, field)
  if waiting then
    local cut = string.find(waiting, '\n', 1, true)
    local event = string.sub(waiting, 1, cut - 1)
    local data = '{"job_id":' .. cjson.encode(job_id) .. ',' .. string.sub(waiting, cut + 1)
    redis.call(
      'XADD', statuses, 'MINID', '~', oldest, '*',
      'event', event, 'job_id', job_id, 'data', data
    )
    redis.call('HDEL', message, field)
    emitted = emitted + 1
  end
end
return emitted
