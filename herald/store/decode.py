"""Redis replies as text: clients made with or without ``decode_responses`` both work."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A reply item as ``str`` (bytes decoded as UTF-8)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def text_map(raw: Any) -> dict[str, str]:
    """A hash or stream-entry reply as ``{str: str}``."""
    return {text(k): text(v) for k, v in dict(raw).items()}
