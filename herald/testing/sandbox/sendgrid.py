"""SendGrid v3 mail send, as the sandbox speaks it: ``POST /v3/mail/send``."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_SENDGRID_KEY
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER, Answer, Incoming, Sandbox, route

#: SendGrid refuses a request body of this many bytes or more.
SENDGRID_MAX_BYTES = 30_000_000
#: Recipients that always fail: (status, message, whether to add X-RateLimit-Reset).
_SENDGRID_RECIPIENTS: dict[str, tuple[int, str, bool]] = {
    "flood@herald.test": (429, "too many requests", True),
}


def _sg_error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    body = {"errors": [{"message": message, "field": field, "help": None}]}
    return Answer.of(status, body, headers)


def _email_problem(value: Any, where: str) -> tuple[str, str] | None:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        return f"The {where} object must have an email.", where
    if "@" not in value["email"]:
        return "Does not contain a valid address.", f"{where}.email"
    return None


def _content_problem(content: Any) -> tuple[str, str] | None:
    if not isinstance(content, list) or not content:
        return "Unless a valid template_id is provided, the content parameter is required.", (
            "content"
        )
    types = [c.get("type") if isinstance(c, dict) else None for c in content]
    for index, item in enumerate(content):
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            message = "The content value must be a string at least one character in length."
            return message, f"content.{index}.value"
    if "text/plain" in types and types.index("text/plain") != 0:
        return (
            "The text/plain content type must be first, followed by text/html, then any"
            " other content.",
            "content",
        )
    if "text/html" in types and types.index("text/html") > types.count("text/plain"):
        return "The text/html content type must follow text/plain.", "content"
    return None


def _attachments_problem(attachments: Any) -> tuple[str, str] | None:
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        return "The attachments parameter must be an array.", "attachments"
    for index, item in enumerate(attachments):
        where = f"attachments.{index}"
        if not isinstance(item, dict) or not item.get("filename"):
            return "The attachment filename parameter is required.", f"{where}.filename"
        try:
            base64.b64decode(str(item.get("content", "")), validate=True)
        except binascii.Error:
            return "The attachment content must be base64 encoded.", f"{where}.content"
        if item.get("disposition", "attachment") not in ("attachment", "inline"):
            return "The disposition must be attachment or inline.", f"{where}.disposition"
    return None


def _problem(doc: Any) -> tuple[str, str | None] | None:
    """SendGrid's 400 message and field for an invalid body, or None."""
    if not isinstance(doc, dict):
        return "Bad Request", None
    people = doc.get("personalizations")
    if not isinstance(people, list) or not people or not isinstance(people[0], dict):
        return "You must have at least one personalization.", "personalizations"
    to = people[0].get("to")
    if not isinstance(to, list) or not to:
        return "The to parameter is required for all personalization objects.", (
            "personalizations.0.to"
        )
    for index, item in enumerate(to):
        found = _email_problem(item, f"personalizations.0.to.{index}")
        if found:
            return found
    found = _email_problem(doc.get("from"), "from")
    if found:
        return found
    subject = doc.get("subject") or people[0].get("subject")
    if not isinstance(subject, str) or not subject:
        return (
            "The subject is required. You can get around this requirement if you use a"
            " template with a subject defined or if every personalization has a subject"
            " defined.",
            "subject",
        )
    return _content_problem(doc.get("content")) or _attachments_problem(doc.get("attachments"))


@route("sendgrid", r"^/v3/mail/send$", secret=DEFAULT_SENDGRID_KEY)
def sendgrid(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v3/mail/send``: authenticate, validate, answer 202 with ``X-Message-Id``."""
    if req.method != "POST":
        return _sg_error(405, "method not allowed")
    offered = req.headers.get("authorization", "")
    if not hmac.compare_digest(offered, f"Bearer {box.secrets['sendgrid']}"):
        return _sg_error(401, "The provided authorization grant is invalid, expired, or revoked")
    if len(req.body) >= SENDGRID_MAX_BYTES:
        return _sg_error(413, "The JSON payload you have included in your request is too large.")
    doc = req.json()
    problem = _problem(doc)
    if problem:
        return _sg_error(400, *problem)
    for item in doc["personalizations"][0]["to"]:
        if item["email"] in _SENDGRID_RECIPIENTS:
            status, message, reset = _SENDGRID_RECIPIENTS[item["email"]]
            headers = {"X-RateLimit-Reset": str(int(time.time()) + FLOOD_RETRY_AFTER)}
            return _sg_error(status, message, headers=headers if reset else None)
    message_id = f"sandbox-sg-{box.next_id('sendgrid'):08d}"
    return Answer(202, b"", {"X-Message-Id": message_id})
