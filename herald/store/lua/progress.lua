-- progress: record the attempts and the parts a provider has accepted, while this
-- attempt holds the lease, so a retry never sends those parts again. 'retrying' also
-- hands the lease back, for the job's next copy from the queue; 'sending' renews it.
-- Returns 1, or 0 when the lease is no longer this attempt's (nothing written).
--
-- KEYS[1] record: the job's record hash herald:job:<id>
-- KEYS[2] lease: the job's lease herald:lease:<id>
-- ARGV[1] token: this attempt's lease token
-- ARGV[2] attempts: tries at the whole message so far
-- ARGV[3] parts: provider ids of the accepted parts by part index, as JSON
-- ARGV[4] state: 'sending' (keep the lease) or 'retrying' (hand it back)
-- ARGV[5] lease_s: how long the renewed lease lasts, in s

local record = KEYS[1]
local lease = KEYS[2]
local token = ARGV[1]
local attempts = ARGV[2]
local parts = ARGV[3]
local state = ARGV[4]
local lease_s = tonumber(ARGV[5])

if redis.call('GET', lease) ~= token then return 0 end
redis.call('HSET', record, 'attempts', attempts, 'parts', parts, 'state', state)
if state == 'retrying' then
  redis.call('DEL', lease)
else
  redis.call('EXPIRE', lease, lease_s)
end
return 1
