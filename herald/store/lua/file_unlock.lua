-- file_unlock: release a file's upload lock, only if this worker still holds it (a lock
-- that expired and was taken by another worker stays theirs). Returns 1 if released.
--
-- KEYS[1] lock: the upload lock herald:files:upload:<scope>:<file_id>
-- ARGV[1] token: the holder's token, as set

local lock = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
return 0
