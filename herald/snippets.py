"""The snippet library: ``/name`` shortcuts.

Two sources: ``HERALD_SNIPPETS_FILE`` (TOML, read when a worker starts) and a Redis hash
edited at run time with ``herald snippets set|delete`` (read with every job, in the same
round trip as its claim, so no worker restarts). A Redis snippet overrides a file snippet
of the same name.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import redis

from herald.constants import SNIPPETS_KEY
from herald.errors import ConfigError
from herald.replies import text_map

#: Letters, digits and "_", with inner "-" (the renderer's rule for /name).
NAME = re.compile(r"^[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*$")


def parse_snippets(text: str) -> dict[str, str]:
    """Parse a snippets TOML document: one ``[snippets]`` table of ``name = "text"``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"snippets file is not valid TOML: {exc}") from exc
    table = doc.get("snippets", {})
    if not isinstance(table, dict):
        raise ConfigError("snippets file: [snippets] must be a table")
    for name, value in table.items():
        if not NAME.match(name) or not isinstance(value, str):
            raise ConfigError(
                f"snippets file: {name!r} must be a name of letters, digits, _ or -"
                " with a text value"
            )
    return dict(table)


def load_snippets(path: Path) -> dict[str, str]:
    """Read the snippets file; a missing file is an empty library."""
    if not path.exists():
        return {}
    return parse_snippets(path.read_text(encoding="utf-8"))


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
