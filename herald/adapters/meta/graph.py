"""Meta's Graph API, shared by the WhatsApp, Messenger and Instagram adapters.

Every Graph error is ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}``; an adapter's table maps a ``code`` (or a ``(code, subcode)`` pair)
to a Herald error class, and :func:`graph_error` branches on those numbers, never on
the text. ``provider_code`` is the code as a string, or ``"code/subcode"`` when the
table keys on the subcode (``"10/2018278"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from httpx import Response

from herald.adapters.http import json_or_none, retry_after
from herald.contract.errors import (
    AuthFailed,
    InvalidContent,
    ProviderUnavailable,
    RateLimited,
    SendError,
)

GRAPH_URL = "https://graph.facebook.com"
#: The Graph API version every Meta adapter calls.
GRAPH_VERSION = "v21.0"
#: How much of Meta's own error text an error message keeps.
TEXT_KEPT = 300

ErrorKey = int | tuple[int, int]
#: Graph code, or (code, subcode), -> the Herald error it means.
ErrorTable = Mapping[ErrorKey, type[SendError]]


def graph_url(base_url: str | None, node: str, edge: str) -> str:
    """``{base}/{GRAPH_VERSION}/{node}/{edge}``; ``base_url`` overrides the Graph host."""
    return f"{(base_url or GRAPH_URL).rstrip('/')}/{GRAPH_VERSION}/{node}/{edge}"


def encode(body: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON, UTF-8, emoji as they are."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def check_length(text: str, limit: int, what: str) -> str:
    """``text`` unchanged, or :class:`InvalidContent` naming ``what`` and the limit."""
    if len(text) > limit:
        raise InvalidContent(f"{what} is {len(text)} characters; the limit is {limit}")
    return text


@dataclass(frozen=True)
class GraphError:
    """The fields of a Graph ``error`` object that Herald reads."""

    code: int
    subcode: int | None
    message: str
    details: str | None
    fbtrace_id: str | None


def parse_error(data: Any) -> GraphError | None:
    """The Graph error in a decoded body, or None when it holds no numeric ``code``."""
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(error, dict) or not isinstance(code, int) or isinstance(code, bool):
        return None
    subcode = error.get("error_subcode")
    extra = error.get("error_data")
    details = extra.get("details") if isinstance(extra, dict) else None
    trace = error.get("fbtrace_id")
    return GraphError(
        code=code,
        subcode=subcode if isinstance(subcode, int) and not isinstance(subcode, bool) else None,
        message=str(error.get("message") or f"Graph error {code}"),
        details=details if isinstance(details, str) and details else None,
        fbtrace_id=trace if isinstance(trace, str) and trace else None,
    )


def table(*rows: tuple[type[SendError], Iterable[ErrorKey]]) -> dict[ErrorKey, type[SendError]]:
    """An error table from ``(error class, keys)`` rows; a key appears in one row only."""
    built: dict[ErrorKey, type[SendError]] = {}
    for cls, keys in rows:
        for key in keys:
            if key in built:
                raise ValueError(f"Graph error {key} is mapped twice")
            built[key] = cls
    return built


def graph_error(
    what: str, response: Response, errors: ErrorTable, *, secrets: Iterable[str] = ()
) -> SendError:
    """The Herald error for a failed Graph answer (or a 2xx without a message id)."""
    status = response.status_code
    found = parse_error(json_or_none(response))
    if found is None:
        return by_status(f"{what}: HTTP {status}", response, str(status))
    text = found.message[:TEXT_KEPT]
    if found.details and found.details not in text:
        text += f" ({found.details[:TEXT_KEPT]})"
    if found.fbtrace_id:
        text += f" [fbtrace_id {found.fbtrace_id}]"
    message = f"{what}: {text}"
    for secret in secrets:
        if secret:  # an echoed token must not reach events and logs
            message = message.replace(secret, "<token>")
    pair = (found.code, found.subcode) if found.subcode is not None else None
    if pair is not None and pair in errors:
        cls, provider_code = errors[pair], f"{found.code}/{found.subcode}"
    elif found.code in errors:
        cls, provider_code = errors[found.code], str(found.code)
    else:
        return by_status(message, response, str(found.code))
    if issubclass(cls, RateLimited):
        return cls(message, provider_code=provider_code, retry_after=retry_after(response))
    if issubclass(cls, ProviderUnavailable):
        # A 5xx may have been processed; Meta's 400-status transient codes were not.
        return cls(message, provider_code=provider_code, in_doubt=status >= 500)
    return cls(message, provider_code=provider_code)


def by_status(message: str, response: Response, provider_code: str) -> SendError:
    """The error for an answer whose Graph code is missing or unknown: by HTTP status.

    An unknown code on a 4xx is taken as a refusal of this request (``invalid_content``):
    Meta answers 4xx for what it will not take, and resending the same bytes cannot help.
    """
    status = response.status_code
    if status == 429:
        return RateLimited(message, provider_code=provider_code, retry_after=retry_after(response))
    if status in (401, 403):
        return AuthFailed(message, provider_code=provider_code)
    if 400 <= status < 500:
        return InvalidContent(message, provider_code=provider_code)
    # 5xx, or a 2xx without a message id: it may have been sent. 1xx/3xx were not.
    return ProviderUnavailable(
        message, provider_code=provider_code, in_doubt=status >= 500 or status < 300
    )
