-- sweep: look at jobs whose due time has passed (docs/delivery.md#the-sweeper). A job
-- 'retrying' is due to be published again; one 'sending' whose lease has ended was cut off
-- mid-send; one 'queued' that cannot still be in its queue (the queue is empty, or the job
-- is well behind the newest one claimed: a queue is consumed in order) was lost by a
-- Redis broker (a RabbitMQ broker keeps what it queued: those leave the due set). Each
-- job returned is made due again a margin later, so a sweeper that dies before publishing
-- it leaves it to the next sweep; the others are made due when they may next need a look.
-- Returns {kind, job_id, payload, expires, due_ms, ...} with kind 'publish' (a retry) or
-- 'lost', and due_ms the due time given to it (queued.lua checks that nothing moved it).
--
-- KEYS[1] due: the queue's due set herald:due:<queue>
-- KEYS[2] watermark: the queue's claim watermark herald:watermark:<queue>
-- KEYS[3] queue: the broker's list of the queue (kombu's Redis transport)
-- KEYS[4..] jobs: each job's record hash herald:job:<id> then its lease herald:lease:<id>
-- ARGV[1] margin_ms: how long after its due time a job is looked at again
-- ARGV[2] slack_ms: how far behind the newest claimed job a queued one must be to be lost
-- ARGV[3] redis_broker: '1' when the broker is Redis, '0' when it keeps its own queues
-- ARGV[4..] ids: the job ids, in the order of the jobs' keys

local due = KEYS[1]
local watermark = KEYS[2]
local queue = KEYS[3]
local margin_ms = tonumber(ARGV[1])
local slack_ms = tonumber(ARGV[2])
local redis_broker = ARGV[3] == '1'
local jobs = {}
for i = 4, #KEYS do jobs[i - 3] = KEYS[i] end
local ids = {}
for i = 4, #ARGV do ids[i - 3] = ARGV[i] end

if #jobs ~= 2 * #ids then
  return redis.error_reply('sweep: a record and a lease for each job id')
end

local now = now_ms()
local waiting = redis.call('LLEN', queue) > 0
local newest = tonumber(redis.call('GET', watermark) or 0)
local out = {}
local function take(kind, id, record)
  local payload = redis.call('HGET', record, 'payload')
  if not payload then
    redis.call('ZREM', due, id)
    return
  end
  redis.call('ZADD', due, now + margin_ms, id)
  local expires = redis.call('HGET', record, 'expires') or ''
  table.insert(out, kind)
  table.insert(out, id)
  table.insert(out, payload)
  table.insert(out, expires)
  table.insert(out, tostring(now + margin_ms))
end

for i, id in ipairs(ids) do
  local record, lease = jobs[2 * i - 1], jobs[2 * i]
  local score = tonumber(redis.call('ZSCORE', due, id))
  local state = redis.call('HGET', record, 'state')
  if score == nil or score > now then
    -- claimed or moved since it was read: nothing to do
  elseif state == 'retrying' then
    take('publish', id, record)
  elseif state == 'sending' then
    local left = redis.call('PTTL', lease)
    if left > 0 then
      redis.call('ZADD', due, now + left, id)
    else
      take('lost', id, record)
    end
  elseif state == 'queued' or state == 'pending' then
    local queued = tonumber(redis.call('HGET', record, 'queued_ms') or 0)
    if not redis_broker then
      redis.call('ZREM', due, id)
    elseif waiting and queued > newest - slack_ms then
      redis.call('ZADD', due, now + margin_ms, id)
    else
      take('lost', id, record)
    end
  else
    redis.call('ZREM', due, id)
  end
end
return out
