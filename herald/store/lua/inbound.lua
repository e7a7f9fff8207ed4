-- inbound: append an inbound message to the inbound stream once per provider event:
-- providers resend what they think we did not get, so the event's dedupe key is marked
-- (docs/webhooks.md#inbound-messages). The interaction itself is interaction.lua's.
-- Returns the entry id, or false for an event already recorded.
--
-- KEYS[1] seen: the event's dedupe mark herald:seen:<channel_id>:<event id>
-- KEYS[2] inbound: the inbound stream (HERALD_INBOUND_STREAM, herald:inbound by default)
-- ARGV[1] event: the entry's event name, message.received
-- ARGV[2] data: the entry's data, the message as JSON
-- ARGV[3] keep_ms: how long the mark is kept, and the stream keeps a message

local seen = KEYS[1]
local inbound = KEYS[2]
local event = ARGV[1]
local data = ARGV[2]
local keep_ms = tonumber(ARGV[3])

if not redis.call('SET', seen, '1', 'NX', 'PX', keep_ms) then return false end
local oldest = math.max(0, now_ms() - keep_ms) .. '-0'
return redis.call('XADD', inbound, 'MINID', '~', oldest, '*', 'event', event, 'data', data)
