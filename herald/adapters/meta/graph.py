"""Meta's Graph API, shared by the WhatsApp, Messenger and Instagram adapters.

Every Graph error is ``{"error": {"message", "type", "code", "error_subcode",
"error_data", "fbtrace_id"}}``; an adapter's table maps a ``code`` (or a ``(code,
subcode)`` pair) to a Herald error class, and :func:`read` hands both keys to
:func:`herald.adapters.answers.classify`, which branches on those numbers, never on the
text. ``provider_code`` is the code as a string, or ``"code/subcode"`` when the table
keys on the pair (``"10/2018278"``).
"""

from __future__ import annotations

from httpx import Response

from herald.adapters.answers import Answer, json_object, retry_after

GRAPH_URL = "https://graph.facebook.com"
#: The Graph API version every Meta adapter calls.
GRAPH_VERSION = "v21.0"


def graph_url(base_url: str | None, node: str, edge: str) -> str:
    """``{base}/{GRAPH_VERSION}/{node}/{edge}``; ``base_url`` overrides the Graph host."""
    return f"{(base_url or GRAPH_URL).rstrip('/')}/{GRAPH_VERSION}/{node}/{edge}"


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read(response: Response) -> Answer:
    """A Graph answer as an :class:`Answer`; without a numeric ``code``, by HTTP status."""
    error = json_object(response).get("error")
    error = error if isinstance(error, dict) else {}
    code = _number(error.get("code"))
    if code is None:
        return Answer(response.status_code, retry_after=retry_after(response))
    subcode = _number(error.get("error_subcode"))
    text = str(error.get("message") or f"Graph error {code}")
    extra = error.get("error_data")
    details = extra.get("details") if isinstance(extra, dict) else None
    if isinstance(details, str) and details and details not in text:
        text += f" ({details})"
    trace = error.get("fbtrace_id")
    if isinstance(trace, str) and trace:
        text += f" [fbtrace_id {trace}]"  # what Meta's support asks for
    return Answer(
        response.status_code,
        keys=(code,) if subcode is None else ((code, subcode), code),
        provider_code=str(code),
        text=text,
        retry_after=retry_after(response),
    )
