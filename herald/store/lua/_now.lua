-- _now: the clock of the scripts that call now_ms(), put before them by the loader
-- (herald/store/scripts.py) on their first line, so error line numbers stay the file's.
-- Redis's clock, not the caller's: producers, workers and reapers agree on "now".
-- Code lines here must carry no comment: the loader joins them into one line.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
