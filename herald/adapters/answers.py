"""What a provider answered, and the one rule that turns a refused request into a Herald error.

Each adapter keeps a table of its provider's own codes (data) and a reader that turns the
provider's body into an :class:`Answer`; :func:`classify` does the rest, the same way for
every HTTP provider: the table first, most specific key first, else the HTTP status.
The outcome codes are those of docs/contract.md#outcome-events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from herald.adapters.masking import Mask
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    RecipientUnavailable,
    SendError,
)

#: A provider's own code: a number, a text a reader derives ("chat not found"), or
#: Meta's ``(code, subcode)`` pair.
Key = int | str | tuple[int, int]
#: Provider code -> the Herald error it means.
ErrorTable = Mapping[Key, type[SendError]]


@dataclass(frozen=True)
class Answer:
    """What a provider answered to a request that did not succeed."""

    #: The HTTP status.
    status: int
    #: The provider's own codes to look up, most specific first (Meta: (code, subcode), code).
    keys: tuple[Key, ...] = ()
    #: The provider's own code as reported; None when it gave none (the status is reported).
    provider_code: str | None = None
    #: The provider's text for people; "HTTP <status>" when empty. Masked and cut by classify.
    text: str = ""
    #: Seconds the provider asked us to wait before trying again.
    retry_after: float | None = None


def table(*rows: tuple[type[SendError], Iterable[Key]]) -> dict[Key, type[SendError]]:
    """An error table from ``(error class, keys)`` rows; a key appears in one row only."""
    built: dict[Key, type[SendError]] = {}
    for cls, keys in rows:
        for key in keys:
            if key in built:
                raise ValueError(f"provider code {key!r} is mapped twice")
            built[key] = cls
    return built


def classify(answer: Answer, errors: ErrorTable, what: str, *, mask: Mask) -> SendError:
    """The Herald error for ``answer``: by ``errors``, else by HTTP status.

    ``what`` names the call in the message; ``mask`` hides the channel's secrets in it.
    """
    message = f"{what}: {mask.shown(answer.text or f'HTTP {answer.status}')}"
    key = next((key for key in answer.keys if key in errors), None)
    cls = by_status(answer.status) if key is None else errors[key]
    # A matched (code, subcode) pair is reported as "code/subcode" (Meta's "10/2018278").
    code = "/".join(map(str, key)) if isinstance(key, tuple) else reported(answer)
    if issubclass(cls, RateLimited):
        return cls(message, provider_code=code, retry_after=answer.retry_after)
    if issubclass(cls, ProviderUnavailable):
        return cls(message, provider_code=code, in_doubt=in_doubt(answer))
    return cls(message, provider_code=code)


def undelivered(
    keys: tuple[Key, ...], errors: ErrorTable, what: str, text: str, *, mask: Mask
) -> SendError:
    """The Herald error of a message the provider accepted and reports undelivered later
    (a webhook: WhatsApp's 131026, Twilio's 30003): by ``errors`` like an answer, else
    ``recipient_unavailable`` (it reached the provider, not the recipient). ``keys`` are the
    provider's codes, the first is reported; none gives a null ``provider_code``."""
    key = next((key for key in keys if key in errors), None)
    cls = RecipientUnavailable if key is None else errors[key]
    message = f"{what}: {mask.shown(text or 'undelivered')}"
    return cls(message, provider_code=str(keys[0]) if keys else None)


def by_status(status: int) -> type[SendError]:
    """The error of an answer no table entry explains, by its HTTP status alone.

    Any other 4xx is a refusal of this request: resending the same bytes cannot help.
    5xx, a 2xx without what success needs, and 1xx/3xx (redirects are not followed) are
    worth another attempt.
    """
    if status in (401, 403):
        return AuthFailed
    if status == 429:
        return RateLimited
    if 400 <= status < 500:
        return InvalidContent
    return ProviderUnavailable


def in_doubt(answer: Answer) -> bool:
    """Whether the provider may have processed the request after all.

    A 5xx may have been; so may a 2xx we could not read, unless the provider gave a code
    of its own. A provider's code below 500 is a definite refusal (Viber's HTTP 200 with
    an unknown status, Meta's 400-status transient codes), and 1xx/3xx were not processed.
    """
    return answer.status >= 500 or (200 <= answer.status < 300 and answer.provider_code is None)


def reported(answer: Answer) -> str:
    """The ``provider_code`` of an answer: the provider's own code, else the HTTP status."""
    return str(answer.status) if answer.provider_code is None else answer.provider_code


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's body as a JSON object, or ``{}`` when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
