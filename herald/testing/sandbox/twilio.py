"""Twilio Programmable Messaging, as the sandbox speaks it.

``POST /2010-04-01/Accounts/<AccountSid>/Messages.json``, form-encoded, HTTP Basic
``<AccountSid>:<auth token>``. Special ``To`` numbers (Twilio's own magic test
numbers where it has one) reproduce the documented errors.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Any
from urllib.parse import parse_qs

from herald.testing.sandbox.credentials import DEFAULT_TWILIO_AUTH_TOKEN
from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route

BODY_MAX = 1600
MEDIA_MAX = 10

#: ``To`` numbers that always fail: (HTTP status, Twilio code, message).
TWILIO_RECIPIENTS: dict[str, tuple[int, int, str]] = {
    "+15005550001": (400, 21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550003": (400, 21408, "Permission to send an SMS has not been enabled for the region"),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (400, 21614, "'To' number is not a valid mobile number"),
    "+15005550429": (429, 20429, "Too Many Requests"),
}
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def _twilio_error(status: int, code: int, message: str) -> Answer:
    return Answer.of(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def _basic(header: str) -> tuple[str, str] | None:
    """The (user, password) of a Basic ``Authorization`` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _form_problem(form: dict[str, list[str]]) -> tuple[int, str] | None:
    """Twilio's (code, message) for a form it refuses, or None."""
    to = form.get("To", [""])[0]
    if not to:
        return 21604, "A 'To' phone number is required."
    if not _E164.match(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if not form.get("From", [""])[0] and not form.get("MessagingServiceSid", [""])[0]:
        return 21603, "A 'From' or 'MessagingServiceSid' parameter is required."
    body = form.get("Body", [""])[0]
    media = form.get("MediaUrl", [])
    if not body and not media:
        return 21602, "Message body is required."
    if len(body) > BODY_MAX:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if len(media) > MEDIA_MAX:
        return 21623, "Number of media files exceeds allowed limit."
    return None


@route(
    "twilio_sms",
    r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$",
    secret=DEFAULT_TWILIO_AUTH_TOKEN,
)
def twilio_sms(box: Sandbox, req: Incoming) -> Answer:
    """Create a message: validate auth, form and recipient; answer 201 with a sid."""
    sid = req.match["sid"]
    creds = _basic(req.headers.get("authorization", ""))
    if (
        creds is None
        or creds[0] != sid
        or not re.fullmatch(r"AC[0-9a-f]{32}", sid)
        or not hmac.compare_digest(creds[1], box.secrets["twilio_sms"])
    ):
        return _twilio_error(401, 20003, "Authenticate")
    if req.method != "POST":
        return _twilio_error(405, 20004, "Method not allowed")
    if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _twilio_error(400, 21602, "Message body is required.")
    form = parse_qs(req.body.decode(), keep_blank_values=True)
    problem = _form_problem(form)
    if problem:
        return _twilio_error(400, *problem)
    to = form["To"][0]
    if to in TWILIO_RECIPIENTS:
        return _twilio_error(*TWILIO_RECIPIENTS[to])
    message_sid = f"SM{box.next_id('twilio_sms'):032x}"
    first = {name: values[0] for name, values in form.items()}
    answer: dict[str, Any] = {
        "sid": message_sid,
        "account_sid": sid,
        "to": to,
        "from": first.get("From"),
        "messaging_service_sid": first.get("MessagingServiceSid"),
        "body": first.get("Body", ""),
        "status": "queued",
        "num_media": str(len(form.get("MediaUrl", []))),
        "num_segments": "1",
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
    }
    return Answer.of(201, answer)
