"""The run-time snippet library: a Redis hash edited with ``herald snippets set|delete``.

Workers read it with every job, in the same round trip as the job's claim, so an edit
applies without a restart; it overrides the snippets file (:mod:`herald.config.snippets`).
"""

from __future__ import annotations

import redis

from herald.config.snippets import NAME
from herald.contract.errors import ConfigError
from herald.store.decode import text_map
from herald.store.keys import SNIPPETS_KEY


def live_snippets(client: redis.Redis) -> dict[str, str]:
    """The run-time library kept in Redis."""
    raw = client.hgetall(SNIPPETS_KEY)
    return text_map(raw)


def set_snippet(client: redis.Redis, name: str, text: str) -> None:
    """Add or replace a run-time snippet."""
    if not NAME.match(name):
        raise ConfigError(f"snippet name {name!r}: use letters, digits, _ and - only")
    client.hset(SNIPPETS_KEY, name, text)


def delete_snippet(client: redis.Redis, name: str) -> bool:
    """Remove a run-time snippet; True if it existed."""
    return bool(client.hdel(SNIPPETS_KEY, name))
