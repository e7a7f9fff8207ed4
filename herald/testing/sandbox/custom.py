"""The custom channel, as the sandbox receives it: Standard Webhooks on ``POST /webhook...``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_WEBHOOK_SECRET
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER, Answer, Incoming, Sandbox, route

#: Standard Webhooks' timestamp tolerance, in seconds.
WEBHOOK_TOLERANCE_S = 300

_WEBHOOK_DATA_KEYS = {"job_id", "workflow", "contact_id", "channel_id", "recipient", "message"}
#: Recipients that always fail: (status, body, headers).
_WEBHOOK_RECIPIENTS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "blocked": (403, {"error": "recipient blocked"}, {}),
    "flood": (429, {"error": "too many requests"}, {"Retry-After": str(FLOOD_RETRY_AFTER)}),
}


def _signed(secret: str, req: Incoming) -> bool:
    """Whether the Standard Webhooks headers sign this body under ``secret``, in time."""
    msg_id = req.headers.get("webhook-id", "")
    stamp = req.headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > WEBHOOK_TOLERANCE_S:
        return False
    key = secret.removeprefix("whsec_")
    try:
        raw_key = base64.b64decode(key + "=" * (-len(key) % 4))
    except binascii.Error:
        return False
    mac = hmac.new(raw_key, f"{msg_id}.{stamp}.".encode() + req.body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    offered = req.headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, sig) for sig in offered)


def _webhook_problem(doc: Any, stamp: str) -> str | None:
    """What is wrong with a ``message.send`` body (docs/channels/custom.md#the-request), or None."""
    if not isinstance(doc, dict) or set(doc) != {"type", "timestamp", "data"}:
        return "body must be an object with exactly type, timestamp and data"
    if doc["type"] != "message.send":
        return "type must be message.send"
    instant = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if doc["timestamp"] != instant:
        return "timestamp must be the instant of webhook-timestamp"
    if not isinstance(doc["data"], dict) or set(doc["data"]) != _WEBHOOK_DATA_KEYS:
        return "data must hold exactly " + ", ".join(sorted(_WEBHOOK_DATA_KEYS))
    return None


@route("custom", r"^/webhook(/.*)?$", secret=DEFAULT_WEBHOOK_SECRET)
def custom(box: Sandbox, req: Incoming) -> Answer:
    """``POST /webhook...``: verify, validate, deduplicate by ``webhook-id``."""
    if req.method != "POST":
        return Answer.of(405, {"error": "method not allowed"})
    if not _signed(box.secrets["custom"], req):
        return Answer.of(401, {"error": "invalid signature"})
    doc = req.json()
    problem = _webhook_problem(doc, req.headers["webhook-timestamp"])
    if problem:
        return Answer.of(400, {"error": problem})
    recipient = doc["data"]["recipient"]
    if recipient in _WEBHOOK_RECIPIENTS:
        return Answer.of(*_WEBHOOK_RECIPIENTS[recipient])
    message_id, seen = box.once(
        f"custom:{req.headers['webhook-id']}", lambda: f"wh-{box.next_id('custom')}"
    )
    return replace(Answer.of(200, {"message_id": message_id}), duplicate=seen)
