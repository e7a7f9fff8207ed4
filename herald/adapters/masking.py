"""Secrets out of text meant for people: one mask for every adapter, then one cut.

Providers sometimes echo a credential back in their error text ("Malformed access token
EAAG...", an SMTP 535 quoting the AUTH argument), and error messages reach outcome events and
logs. Every adapter masks every form of every secret of its channel before a text is cut to
length (a cut first could leave half a secret behind): raw, URL-encoded, JSON-escaped, and the
credentials the adapter derives from a secret and sends (HTTP Basic, SMTP AUTH; see
:meth:`herald.adapters.base.Adapter.secrets`). What a Herald error is raised from is replaced
by a :class:`MaskedCause`, so no traceback shows a secret either.
"""

from __future__ import annotations

import base64
import json
import re
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

_PERCENT = re.compile(r"%[0-9A-F]{2}")


def secret_values(config: BaseModel) -> list[str]:
    """The value of every ``SecretStr`` field of a config (fields left unset are skipped)."""
    values = (getattr(config, name) for name in type(config).model_fields)
    return [value.get_secret_value() for value in values if isinstance(value, SecretStr)]


def forms(secret: str) -> set[str]:
    """A secret as it may come back: raw; URL-encoded as a path or a query holds it (either
    hex case); JSON-escaped (with ``/`` as ``\\/`` too, as some encoders write it)."""
    encoded = {quote(secret), quote(secret, safe=""), quote_plus(secret, safe="")}
    lowered = {_PERCENT.sub(lambda m: m[0].lower(), form) for form in encoded}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    slashed = {form.replace("/", "\\/") for form in escaped}
    return {secret, *encoded, *lowered, *escaped, *slashed}


def base64_forms(credential: str) -> list[str]:
    """A credential as base64 carries it: padded, and without the ``=`` some servers drop."""
    encoded = base64.b64encode(credential.encode()).decode()
    return [encoded, encoded.rstrip("=")]


def basic_auth(user: str, password: str) -> list[str]:
    """What ``Authorization: Basic`` carries of a password: ``base64(user:password)``."""
    return base64_forms(f"{user}:{password}")


def smtp_auth(user: str, password: str) -> list[str]:
    """What SMTP AUTH sends of a password: PLAIN's ``base64([authzid]\\0user\\0password)``
    (with an empty authzid, the user's, or none) and LOGIN's ``base64(user)``, ``base64(password)``.
    """
    plain = [f"\0{user}\0{password}", f"{user}\0{user}\0{password}", f"{user}\0{password}"]
    return [form for raw in [*plain, user, password] for form in base64_forms(raw)]


@dataclass(frozen=True)
class Mask:
    """Replaces given secrets (every form of each) with :data:`MASK`."""

    #: Longest first, so a secret that contains another is masked whole.
    hidden: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Mask:
        """The mask of these secrets; values under :data:`MIN_SECRET` characters are ignored."""
        found = {form for secret in secrets if len(secret) >= MIN_SECRET for form in forms(secret)}
        return cls(_longest_first(found))

    def __or__(self, other: Mask) -> Mask:
        """A mask hiding what either hides (a pool shared by two channels hides both)."""
        return Mask(_longest_first({*self.hidden, *other.hidden}))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self.hidden:
            text = text.replace(secret, MASK)
        return text

    def shown(self, text: str) -> str:
        """``text`` as an error message may show it: masked, then cut to :data:`TEXT_MAX`."""
        return self(text)[:TEXT_MAX]


def _longest_first(found: set[str]) -> tuple[str, ...]:
    return tuple(sorted(found, key=lambda form: (-len(form), form)))


class MaskedCause(Exception):
    """What a Herald error was raised from, as masked text only.

    The original exception is dropped, with its own causes and the frames it holds: an
    HTTP library's error may quote a header value (``Illegal header value b'Bearer ...'``).
    """

    @classmethod
    def of(cls, exc: BaseException, mask: Mask) -> MaskedCause:
        """The masked stand-in of ``exc``: its type name and its masked text."""
        return cls(f"{type(exc).__name__}: {mask(str(exc))}")
