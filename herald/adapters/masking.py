"""Secrets out of text meant for people: one mask for every adapter, then one cut.

Providers sometimes echo a credential back in their error text ("Malformed access token
EAAG..."), and error messages reach outcome events and logs. Every adapter masks every
secret of its channel, raw and URL-encoded, before a text is cut to length (a cut first
could leave half a secret behind).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

#: What a secret becomes.
MASK = "****"
#: Shorter values are not masked: replacing a 3-character value would shred ordinary text.
MIN_SECRET = 4
#: How many characters of a provider's own text an error message keeps.
TEXT_MAX = 300


def secret_values(config: BaseModel) -> list[str]:
    """The value of every ``SecretStr`` field of a config (fields left unset are skipped)."""
    values = (getattr(config, name) for name in type(config).model_fields)
    return [value.get_secret_value() for value in values if isinstance(value, SecretStr)]


def forms(secret: str) -> set[str]:
    """A secret as it may come back: raw, and URL-encoded as a path or a query would hold it."""
    return {secret, quote(secret), quote(secret, safe=""), quote_plus(secret, safe="")}


@dataclass(frozen=True)
class Mask:
    """Replaces given secrets (every form of each) with :data:`MASK`."""

    #: Longest first, so a secret that contains another is masked whole.
    hidden: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Mask:
        """The mask of these secrets; values under :data:`MIN_SECRET` characters are ignored."""
        found = {form for secret in secrets if len(secret) >= MIN_SECRET for form in forms(secret)}
        return cls(tuple(sorted(found, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self.hidden:
            text = text.replace(secret, MASK)
        return text

    def shown(self, text: str) -> str:
        """``text`` as an error message may show it: masked, then cut to :data:`TEXT_MAX`."""
        return self(text)[:TEXT_MAX]
