"""The one length check: a text over a provider's limit is refused before any request.

Providers count differently (Telegram and LINE in UTF-16 code units, most in code points,
Telegram's callback data in UTF-8 bytes), so the check says which count it used. Herald
never truncates: a cut message could change its meaning.
"""

from __future__ import annotations

from enum import Enum

from herald.contract.errors import InvalidContent


class Units(Enum):
    """How a provider counts a text's length; the value names the unit in messages."""

    #: Unicode code points, as Python's ``len`` counts.
    CHARACTERS = "characters"
    #: UTF-16 code units, as Java and JavaScript services count (an emoji is usually 2).
    UTF16 = "UTF-16 code units"
    #: UTF-8 bytes.
    BYTES = "bytes"

    def count(self, text: str) -> int:
        """The length of ``text`` in these units."""
        if self is Units.UTF16:
            return len(text.encode("utf-16-le")) // 2
        if self is Units.BYTES:
            return len(text.encode())
        return len(text)


def check_length(text: str, limit: int, what: str, *, units: Units = Units.CHARACTERS) -> str:
    """``text`` unchanged, or :class:`InvalidContent` "<what> is N <units>; the limit is L".

    ``what`` names the channel and the field (``"telegram caption"``).
    """
    size = units.count(text)
    if size > limit:
        raise InvalidContent(f"{what} is {size} {units.value}; the limit is {limit}")
    return text
