"""Messenger and Instagram Send API, as the sandbox speaks them.

Messenger: ``POST /v<NN>.0/me/messages?access_token=<page token>``. Instagram:
``POST /v<NN>.0/<account id>/messages`` with ``Authorization: Bearer``; Instagram
professional account ids start with ``1784``, which tells the route from WhatsApp's.
Special recipient ids reproduce documented errors (``_SEND_API_RECIPIENTS``).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from herald.testing.sandbox.credentials import DEFAULT_INSTAGRAM_TOKEN, DEFAULT_MESSENGER_TOKEN
from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route
from herald.testing.sandbox.whatsapp import bad_token, bearer_ok, graph_error

#: Recipient id -> (HTTP status, code, subcode, Meta's message).
_SEND_API_RECIPIENTS: dict[str, tuple[int, int, int | None, str]] = {
    "blocked": (400, 551, None, "This person isn't available right now."),
    "window-closed": (400, 10, 2018278, "This message is sent outside of allowed window."),
    "unknown-user": (400, 100, 2018001, "No matching user found"),
    "flood": (400, 613, None, "Calls to this api have exceeded the rate limit."),
    "unavailable": (500, 1200, None, "Temporary send message failure. Please try again later"),
}
_ATTACHMENTS = {"image", "audio", "video", "file", "template"}
_MESSENGER_TAGS = {
    "HUMAN_AGENT",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "ACCOUNT_UPDATE",
}


@dataclass(frozen=True)
class _Facts:
    provider: str
    text_max: int
    tags: set[str]
    templates: set[str]


_MESSENGER = _Facts("messenger", 2000, _MESSENGER_TAGS, {"generic", "button"})
_INSTAGRAM = _Facts("instagram", 1000, {"HUMAN_AGENT"}, {"generic"})


def _hide_access_token(path: str) -> str:
    return re.sub(r"access_token=[^&]*", "access_token=<token>", path)


def _messaging_problem(doc: dict[str, Any], facts: _Facts) -> str | None:
    recipient = doc.get("recipient")
    if not isinstance(recipient, dict) or not recipient.get("id"):
        return "param recipient[id] is required"
    kind = doc.get("messaging_type")
    if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return "param messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG"
    if (kind == "MESSAGE_TAG") != ("tag" in doc):
        return "param tag goes with messaging_type MESSAGE_TAG, and only with it"
    if kind == "MESSAGE_TAG" and doc["tag"] not in facts.tags:
        return f"param tag must be one of {', '.join(sorted(facts.tags))}"
    return None


def _text_problem(message: dict[str, Any], facts: _Facts) -> str | None:
    text = message["text"]
    if not isinstance(text, str) or not text or len(text) > facts.text_max:
        return f"Length of param message[text] must be less than or equal to {facts.text_max}"
    replies = message.get("quick_replies", [])
    if not isinstance(replies, list) or len(replies) > 13:
        return "param message[quick_replies] must have at most 13 elements"
    for reply in replies:
        title = reply.get("title") if isinstance(reply, dict) else None
        if reply.get("content_type") != "text" or not isinstance(title, str) or len(title) > 20:
            return "quick reply needs content_type text and a title of at most 20 characters"
        if not reply.get("payload"):
            return "quick reply payload is required"
    return None


def _attachment_id_problem(
    box: Sandbox, attachment_id: str, facts: _Facts, kind: str
) -> str | None:
    """Why a saved asset cannot be sent: one this account never uploaded, or another type."""
    if box.recall(f"{facts.provider}:attachment:{attachment_id}") != kind:
        return f"param message[attachment][payload][attachment_id] {attachment_id} is no {kind}"
    return None


def _attachment_problem(box: Sandbox, attachment: Any, facts: _Facts) -> str | None:
    kind = attachment.get("type") if isinstance(attachment, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if kind not in _ATTACHMENTS or not isinstance(payload, dict):
        return f"param message[attachment][type] must be one of {', '.join(sorted(_ATTACHMENTS))}"
    if kind != "template":
        if payload.get("attachment_id"):
            return _attachment_id_problem(box, str(payload["attachment_id"]), facts, kind)
        return None if payload.get("url") else "param message[attachment][payload][url] required"
    template = payload.get("template_type")
    if template not in facts.templates:
        return f"template_type must be one of {', '.join(sorted(facts.templates))}"
    items = payload.get("buttons") if template == "button" else payload.get("elements")
    most = 3 if template == "button" else 10
    if not isinstance(items, list) or not 1 <= len(items) <= most:
        return f"a {template} template holds 1 to {most} items"
    text = payload.get("text", "")
    if template == "button" and (not isinstance(text, str) or not text or len(text) > 640):
        return "button template text is required, at most 640 characters"
    return None


def _problem(box: Sandbox, doc: Any, facts: _Facts) -> str | None:
    """Why Meta would refuse this body (code 100), or None."""
    if not isinstance(doc, dict):
        return "the body must be a JSON object"
    problem = _messaging_problem(doc, facts)
    message = doc.get("message")
    if problem or not isinstance(message, dict):
        return problem or "param message is required"
    if ("text" in message) == ("attachment" in message):
        return "param message must hold text or attachment, not both"
    if "text" in message:
        return _text_problem(message, facts)
    return _attachment_problem(box, message["attachment"], facts)


def _send(box: Sandbox, req: Incoming, facts: _Facts) -> Answer:
    if req.method != "POST":
        return graph_error(400, 100, "Unsupported get request.")
    doc = req.json()
    problem = _problem(box, doc, facts)
    if problem:
        return graph_error(400, 100, problem)
    recipient = str(doc["recipient"]["id"])
    if recipient in _SEND_API_RECIPIENTS:
        status, code, subcode, message = _SEND_API_RECIPIENTS[recipient]
        return graph_error(status, code, message, subcode=subcode)
    number = box.next_id(facts.provider)
    return Answer.of(
        200, {"recipient_id": recipient, "message_id": f"m_sandbox-{facts.provider}-{number}"}
    )


@route(
    "messenger",
    r"^/v\d+\.\d+/me/messages$",
    _hide_access_token,
    secret=DEFAULT_MESSENGER_TOKEN,
)
def messenger(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/me/messages?access_token=...``: the Page's Send API."""
    query = getattr(req, "query", None)  # the server passes the query string when it can
    if isinstance(query, str):
        offered = parse_qs(query).get("access_token", [""])[0]
        if not hmac.compare_digest(offered.encode(), box.secrets["messenger"].encode()):
            return bad_token()
    return _send(box, req, _MESSENGER)


@route(
    "instagram",
    r"^/v\d+\.\d+/(?P<account_id>1784\d+)/messages$",
    secret=DEFAULT_INSTAGRAM_TOKEN,
)
def instagram(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/<account id>/messages``, Bearer token: Instagram's Send API."""
    if not bearer_ok(req, box.secrets["instagram"]):
        return bad_token()
    return _send(box, req, _INSTAGRAM)
