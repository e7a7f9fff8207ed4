"""Viber REST Bot API, as the sandbox speaks it: ``POST /pa/send_message``.

Always HTTP 200: the outcome is the JSON ``status`` (0 ok). The token is the
``X-Viber-Auth-Token`` header; special receivers reproduce the documented statuses.
"""

from __future__ import annotations

import hmac
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_VIBER_TOKEN
from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route

#: Where the sandbox's message tokens start (Viber's are 64-bit integers).
FIRST_MESSAGE_TOKEN = 5741311803571721000
BODY_MAX_BYTES = 30 * 1024

#: Receivers that always fail: receiver -> status.
VIBER_RECEIVERS: dict[str, int] = {"unregistered": 5, "unsubscribed": 6, "flood": 12}
STATUS_MESSAGES = {
    0: "ok",
    2: "invalidAuthToken",
    3: "badData",
    4: "missingData",
    5: "receiverNotRegistered",
    6: "receiverNotSubscribed",
    12: "tooManyRequests",
}
#: Fields each message type needs.
_NEEDS = {
    "text": ("text",),
    "picture": ("media",),
    "video": ("media",),
    "file": ("media", "file_name"),
    "url": ("media",),
}


def _status(status: int) -> Answer:
    return Answer.of(200, {"status": status, "status_message": STATUS_MESSAGES[status]})


def _problem(doc: Any) -> int | None:
    """The status for a body Viber refuses (3 badData, 4 missingData), or None."""
    if not isinstance(doc, dict):
        return 3
    sender = doc.get("sender")
    if not doc.get("receiver") or not isinstance(sender, dict) or not sender.get("name"):
        return 4
    if len(str(sender["name"])) > 28 or doc.get("type") not in _NEEDS:
        return 3
    if any(doc.get(name) in (None, "") for name in _NEEDS[doc["type"]]):
        return 4
    text = doc.get("text")
    if isinstance(text, str) and len(text) > 7000:
        return 3
    keyboard = doc.get("keyboard")
    if keyboard is not None and (
        not isinstance(keyboard, dict)
        or keyboard.get("Type") != "keyboard"
        or not 1 <= len(keyboard.get("Buttons") or []) <= 24
    ):
        return 3
    return None


@route("viber", r"^/pa/send_message$", secret=DEFAULT_VIBER_TOKEN)
def viber(box: Sandbox, req: Incoming) -> Answer:
    """Send a message: validate token and body; answer a status body, always HTTP 200."""
    offered = req.headers.get("x-viber-auth-token", "")
    if not hmac.compare_digest(offered, box.secrets["viber"]):
        return _status(2)
    if req.method != "POST" or len(req.body) > BODY_MAX_BYTES:
        return _status(3)
    doc = req.json()
    problem = _problem(doc)
    if problem is not None:
        return _status(problem)
    if doc["receiver"] in VIBER_RECEIVERS:
        return _status(VIBER_RECEIVERS[doc["receiver"]])
    token = FIRST_MESSAGE_TOKEN + box.next_id("viber")
    return Answer.of(
        200,
        {
            "status": 0,
            "status_message": "ok",
            "message_token": token,
            "chat_hostname": "SN-CHAT-01_",
        },
    )
