"""Reading the outcome stream: the newest events, and following new ones.

One place that turns Redis stream replies into :class:`OutcomeEvent` objects, for the CLI,
the demo and consumers; consumer groups (XREADGROUP/XACK) belong here too.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from herald.contract.events import OutcomeEvent
from herald.store.decode import text, text_map

Entry = tuple[str, OutcomeEvent]


def _entries(raw: Any) -> list[Entry]:
    rows = cast(list[tuple[Any, dict[Any, Any]]], raw or [])
    return [(text(entry_id), OutcomeEvent.from_fields(text_map(f))) for entry_id, f in rows]


def newest(client: redis.Redis, stream: str, count: int) -> list[Entry]:
    """The newest ``count`` events, oldest first."""
    return list(reversed(_entries(client.xrevrange(stream, count=count))))


def last_id(client: redis.Redis, stream: str) -> str:
    """The id after which new events will come ("0-0" for a stream not yet written)."""
    if not client.exists(stream):
        return "0-0"
    info = client.xinfo_stream(stream)
    return text(info["last-generated-id"])


def read_after(
    client: redis.Redis, stream: str, after: str, *, block_ms: int, count: int = 100
) -> list[Entry]:
    """Events written after the id ``after``, waiting up to ``block_ms`` for the first."""
    reply = cast(list[tuple[Any, Any]], client.xread({stream: after}, block=block_ms, count=count))
    return [entry for _, rows in reply or [] for entry in _entries(rows)]
