"""The one length check: counted as the provider counts, refused with one message shape."""

from __future__ import annotations

import pytest

from herald.adapters.limits import Units, check_length
from herald.contract.errors import InvalidContent

#: One code point, two UTF-16 code units, four UTF-8 bytes.
EMOJI = "😀"


@pytest.mark.parametrize(
    ("units", "size", "name"),
    [
        (Units.CHARACTERS, 3, "characters"),
        (Units.UTF16, 6, "UTF-16 code units"),
        (Units.BYTES, 12, "bytes"),
    ],
)
def test_a_text_over_the_limit_is_refused_in_its_units(units: Units, size: int, name: str) -> None:
    assert check_length(EMOJI * 3, size, "telegram text", units=units) == EMOJI * 3
    with pytest.raises(InvalidContent) as caught:
        check_length(EMOJI * 3, size - 1, "telegram text", units=units)
    assert caught.value.message == f"telegram text is {size} {name}; the limit is {size - 1}"
