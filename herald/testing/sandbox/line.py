"""LINE Messaging API, as the sandbox speaks it: ``POST /v2/bot/message/push``.

Bearer channel access token; ``X-Line-Retry-Key`` (a UUID) is remembered, so a resend
with an accepted key answers 409 "The retry key is already accepted" with the
``x-line-accepted-request-id`` of the first request, and is recorded as a duplicate.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_LINE_TOKEN
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER, Answer, Incoming, Sandbox, route

#: Where the sandbox's message ids start (LINE ids are 18-digit numbers, as strings).
FIRST_MESSAGE_ID = 461230966842064000

_AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
_BAD_TO = "The property, 'to', in the request body is invalid (line: -, column: -)"
#: Recipients that always fail: (status, body, headers).
LINE_RECIPIENTS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "missing": (400, {"message": _BAD_TO}, {}),
    "invalid": (
        400,
        {
            "message": "The request body has 1 error(s)",
            "details": [{"message": "Invalid user ID", "property": "to"}],
        },
        {},
    ),
    "flood": (
        429,
        {"message": "The API rate limit has been exceeded. Try again later."},
        {"Retry-After": str(FLOOD_RETRY_AFTER)},
    ),
    "monthly-limit": (429, {"message": "You have reached your monthly limit."}, {}),
}
_KINDS = {
    "text": ("text",),
    "image": ("originalContentUrl", "previewImageUrl"),
    "video": ("originalContentUrl", "previewImageUrl"),
    "audio": ("originalContentUrl", "duration"),
    "sticker": ("packageId", "stickerId"),
    "template": ("altText", "template"),
    "flex": ("altText", "contents"),
}


def _message_problem(n: int, message: Any) -> tuple[str, str] | None:
    """(property, problem) of one message object, or None."""
    where = f"messages[{n}]"
    if not isinstance(message, dict) or message.get("type") not in _KINDS:
        return f"{where}.type", "Invalid message type"
    for name in _KINDS[message["type"]]:
        if message.get(name) in (None, ""):
            return f"{where}.{name}", "Must be specified"
    text = message.get("text")
    if isinstance(text, str) and len(text.encode("utf-16-le")) // 2 > 5000:
        return f"{where}.text", "Length must be between 0 and 5000"
    items = (message.get("quickReply") or {}).get("items", [])
    if len(items) > 13:
        return f"{where}.quickReply.items", "Size must be between 1 and 13"
    for i, item in enumerate(items):
        label = (item.get("action") or {}).get("label", "")
        if len(label) > 20:
            return f"{where}.quickReply.items[{i}].action.label", "Length must be at most 20"
    return None


def _body_problem(doc: Any) -> tuple[str, str] | None:
    """(property, problem) of a push body, or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("to"), str) or not doc["to"]:
        return "to", "Must be specified"
    messages = doc.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return "messages", "Size must be between 1 and 5"
    for n, message in enumerate(messages):
        problem = _message_problem(n, message)
        if problem:
            return problem
    return None


def _bad_request(prop: str, problem: str) -> Answer:
    details = [{"message": problem, "property": prop}]
    return Answer.of(400, {"message": "The request body has 1 error(s)", "details": details})


@route("line", r"^/v2/bot/message/push$", secret=DEFAULT_LINE_TOKEN)
def line(box: Sandbox, req: Incoming) -> Answer:
    """Push: validate auth, retry key and body; answer sentMessages, or 409 for a reused key."""
    offered = req.headers.get("authorization", "")
    if not hmac.compare_digest(offered, f"Bearer {box.secrets['line']}"):
        return Answer.of(401, {"message": _AUTH_FAILED})
    if req.method != "POST":
        return Answer.of(405, {"message": "Method Not Allowed"})
    key = req.headers.get("x-line-retry-key")
    if key is not None:
        try:
            uuid.UUID(key)
        except ValueError:
            return Answer.of(400, {"message": "The value for the 'X-Line-Retry-Key' is invalid"})
    doc = req.json()
    problem = _body_problem(doc)
    if problem:
        return _bad_request(*problem)
    if doc["to"] in LINE_RECIPIENTS:
        return Answer.of(*LINE_RECIPIENTS[doc["to"]])
    fresh = uuid.uuid4().hex
    request_id, seen = box.once(f"line:{key}", lambda: fresh) if key else (fresh, False)
    if seen:
        answer = Answer.of(
            409,
            {"message": "The retry key is already accepted"},
            {"x-line-accepted-request-id": request_id},
        )
        return replace(answer, duplicate=True)
    sent = [
        {"id": str(FIRST_MESSAGE_ID + box.next_id("line")), "quoteToken": uuid.uuid4().hex}
        for _ in doc["messages"]
    ]
    return Answer.of(200, {"sentMessages": sent}, {"x-line-request-id": request_id})
