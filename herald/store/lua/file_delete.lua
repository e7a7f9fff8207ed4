-- file_delete: remove one library file, its chunks and its bytes from the quota, at most
-- once (a second delete of the same file finds no description and does nothing).
-- Returns 1 when the file was there, 0 when it was not.
--
-- KEYS[1] meta: the file's description hash herald:files:meta:<file_id>
-- KEYS[2] index: the library's index herald:files:index
-- KEYS[3] used: the library's byte count herald:files:used
-- KEYS[4..] chunks: the file's chunks herald:files:chunk:<file_id>:<n>
-- ARGV[1] file_id: the file's id

local meta = KEYS[1]
local index = KEYS[2]
local used = KEYS[3]
local chunks = {unpack(KEYS, 4)}
local file_id = ARGV[1]

local size = redis.call('HGET', meta, 'size')
if not size then return 0 end
redis.call('DEL', meta)
for _, chunk in ipairs(chunks) do redis.call('DEL', chunk) end
redis.call('ZREM', index, file_id)
redis.call('DECRBY', used, tonumber(size))
return 1
