-- take: move the head message of the first non-empty source list into its in-flight list,
-- sources in the order given (a consumer of several queues takes single jobs before
-- batches); the reply names the pair it came from. Nothing blocks: when every source is
-- empty the reply is false, and the consumer waits on its first queue (BLMOVE) instead.
--
-- KEYS[1..] lists: pairs of a source list (a queue or its priority list) and its in-flight list
-- ARGV[1] count: how many pairs KEYS holds

local lists = KEYS
local count = tonumber(ARGV[1])
for i = 1, count do
  local item = redis.call('LMOVE', lists[2 * i - 1], lists[2 * i], 'RIGHT', 'LEFT')
  if item then
    return {i, item}
  end
end
return false
