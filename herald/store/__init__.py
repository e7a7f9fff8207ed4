"""Herald's state in Redis, shared by the fleet: where Redis is, the job records, the
fleet-wide rate limits, the outcome stream, the run-time snippets, the reaper, and the Lua
scripts (``lua/``, loaded by :mod:`herald.store.scripts`) that change them atomically."""
