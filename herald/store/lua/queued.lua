-- queued: note jobs the sweeper has just published again as queued from now (the watermark
-- compares their queue time). A retry becomes 'queued'; a job cut off mid-send stays
-- 'sending' (its next claim is in doubt). On a Redis broker each is due a margin later, in
-- case this message is lost too; a broker that keeps its queues takes a queued job out of
-- the due set.
--
-- KEYS[1] due: the queue's due set herald:due:<queue>
-- KEYS[2..] records: each job's record hash herald:job:<id>
-- ARGV[1] margin_ms: how long a queued job may go unclaimed before it is looked at
-- ARGV[2] redis_broker: '1' when the broker is Redis, '0' when it keeps its own queues
-- ARGV[3..] ids: the job ids, in the order of the records

local due = KEYS[1]
local margin_ms = tonumber(ARGV[1])
local redis_broker = ARGV[2] == '1'
local records = {}
for i = 2, #KEYS do records[i - 1] = KEYS[i] end
local ids = {}
for i = 3, #ARGV do ids[i - 2] = ARGV[i] end

if #records ~= #ids then
  return redis.error_reply('queued: a record for each job id')
end
local now = now_ms()
for i, id in ipairs(ids) do
  local record = records[i]
  local state = redis.call('HGET', record, 'state')
  if state == 'retrying' then
    redis.call('HSET', record, 'state', 'queued')
    state = 'queued'
  end
  if state == 'queued' or state == 'sending' then
    redis.call('HSET', record, 'queued_ms', now)
    if redis_broker or state == 'sending' then
      redis.call('ZADD', due, now + margin_ms, id)
    else
      redis.call('ZREM', due, id)
    end
  end
end
return #ids
