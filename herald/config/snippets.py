"""The snippets file: ``/name`` shortcuts read when a worker starts.

The run-time library that ``herald snippets set|delete`` edits lives in Redis
(:mod:`herald.store.snippets`) and overrides a file snippet of the same name.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from herald.contract.errors import ConfigError

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
