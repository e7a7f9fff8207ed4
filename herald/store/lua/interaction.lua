-- interaction: remember a contact's newest inbound message on a channel; an older one
-- (interactions can arrive out of order) never overwrites a newer one.
-- Returns 1 when written, 0 when a newer one was kept.
--
-- KEYS[1] interactions: the contact's hash herald:contact:<id>:interactions
-- ARGV[1] channel_id: the channel the contact wrote on, the hash field
-- ARGV[2] at_ms: when the contact wrote, Unix ms
-- ARGV[3] interaction: the value, JSON {at_ms, at, identifier}

local interactions = KEYS[1]
local channel_id = ARGV[1]
local at_ms = tonumber(ARGV[2])
local interaction = ARGV[3]

local old = redis.call('HGET', interactions, channel_id)
if old and tonumber(cjson.decode(old)['at_ms']) >= at_ms then return 0 end
redis.call('HSET', interactions, channel_id, interaction)
return 1
