-- queued: note jobs the sweeper has just published again as queued from now (the watermark
-- compares their queue time). A retry becomes 'queued'; a job cut off mid-send stays
-- 'sending' (its next claim is in doubt). On a Redis broker each is due a margin later, in
-- case this message is lost too; a broker that keeps its queues takes a queued job out of
-- the due set. A job whose due time is no longer the one the sweep gave it was claimed
-- since it was published (a worker may have run it and scheduled a retry already): it is
-- left as it is.
--
-- KEYS[1] due: the queue's due set herald:due:<queue>
-- KEYS[2..] records: each job's record hash herald:job:<id>
-- ARGV[1] margin_ms: how long a queued job may go unclaimed before it is looked at
-- ARGV[2] redis_broker: '1' when the broker is Redis, '0' when it keeps its own queues
-- ARGV[3..] entries: each job id then the due time the sweep gave it, in record order

local due = KEYS[1]
local margin_ms = tonumber(ARGV[1])
local redis_broker = ARGV[2] == '1'
local records = {}
for i = 2, #KEYS do records[i - 1] = KEYS[i] end
local entries = {}
for i = 3, #ARGV do entries[i - 2] = ARGV[i] end

local ids = {}
local swept = {}
for i = 1, #entries, 2 do
  ids[#ids + 1] = entries[i]
  swept[#swept + 1] = tonumber(entries[i + 1])
end

if #records ~= #ids then
  return redis.error_reply('queued: a record for each job id')
end
local now = now_ms()
for i, id in ipairs(ids) do
  local record = records[i]
  local state = redis.call('HGET', record, 'state')
  if tonumber(redis.call('ZSCORE', due, id)) ~= swept[i] then
    state = 'claimed since'  -- not ours to change
  end
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
