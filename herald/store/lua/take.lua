-- take: hand the lost jobs of a sweep to this reaper alone, the second step of a sweep.
-- A suspect whose pending score is unchanged since suspects.lua read it (no claim, no
-- other reaper since) is taken: its score moves to now, so another reaper's sweep skips
-- it until it is lost again. A suspect whose record has no payload left is dropped.
-- Returns job_id, payload pairs of the jobs taken, to publish again.
--
-- KEYS[1] pending: the queue's pending set herald:pending:<queue>
-- KEYS[2..] records: the record hash herald:job:<id> of each suspect, in suspects' order
-- ARGV[1..] suspects: job_id, score pairs, as suspects.lua returned them

local pending = KEYS[1]
local records = {}
for i = 2, #KEYS do records[i - 1] = KEYS[i] end
local suspects = ARGV

if #suspects ~= 2 * #records then
  return redis.error_reply('take: one record key per job_id, score pair')
end
local now = now_ms()
local taken = {}
for i, record in ipairs(records) do
  local job_id, score = suspects[2 * i - 1], suspects[2 * i]
  if redis.call('ZSCORE', pending, job_id) == score then
    local payload = redis.call('HGET', record, 'payload')
    if payload then
      redis.call('ZADD', pending, 'XX', now, job_id)
      table.insert(taken, job_id)
      table.insert(taken, payload)
    else
      redis.call('ZREM', pending, job_id)
    end
  end
end
return taken
