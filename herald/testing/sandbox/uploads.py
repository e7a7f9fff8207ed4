"""Media uploads, as the sandbox speaks them (docs/channels/whatsapp.md#media-upload,
docs/channels/messenger.md#attachment-upload).

- WhatsApp: ``POST /v<NN>.0/<phone_number_id>/media``, Bearer token, multipart
  ``messaging_product=whatsapp``, ``type`` and ``file``: ``{"id": "<media id>"}``.
- Messenger: ``POST /v<NN>.0/me/message_attachments?access_token=...``; Instagram:
  ``POST /v<NN>.0/<account id>/message_attachments`` with Bearer; multipart ``message``
  (``{"attachment": {"type", "payload": {"is_reusable": true}}}``) and ``filedata``:
  ``{"attachment_id": "<id>"}``, which the Send API then takes as
  ``payload.attachment_id`` (the sandbox refuses ids it never handed out).

Each upload is its own provider (``whatsapp_media``, ``messenger_upload``,
``instagram_upload``), so a test counts uploads apart from sends.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

from herald.testing.sandbox.credentials import (
    DEFAULT_INSTAGRAM_TOKEN,
    DEFAULT_MESSENGER_TOKEN,
    DEFAULT_WHATSAPP_TOKEN,
)
from herald.testing.sandbox.multipart import form
from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route
from herald.testing.sandbox.whatsapp import bad_token, bearer_ok, graph_error

_WHATSAPP_TYPES = ("image/", "video/", "audio/", "application/", "text/")


@route(
    "whatsapp_media",
    r"^/v\d+\.\d+/(?P<phone_number_id>(?!1784)\d+)/media$",
    secret=DEFAULT_WHATSAPP_TOKEN,
)
def whatsapp_media(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/<phone_number_id>/media``: keep the file, answer its media id."""
    if not bearer_ok(req, box.secrets["whatsapp"]):
        return bad_token()
    fields = form(req.headers, req.body)
    if fields.get("messaging_product") is None or fields["messaging_product"].text != "whatsapp":
        return graph_error(400, 100, "Invalid parameter: messaging_product must be whatsapp")
    upload, kind = fields.get("file"), fields.get("type")
    if upload is None or upload.filename is None or not upload.data:
        return graph_error(400, 100, "Invalid parameter: file is required")
    if kind is None or not kind.text.startswith(_WHATSAPP_TYPES):
        return graph_error(400, 131053, "Media upload error: unsupported type")
    media_id = str(1_000_000_000_000 + box.next_id("whatsapp_media"))
    box.once(f"whatsapp:media:{media_id}", lambda: kind.text)
    return Answer.of(200, {"id": media_id})


def _attachment(box: Sandbox, req: Incoming, provider: str) -> Answer:
    fields = form(req.headers, req.body)
    try:
        message = json.loads(fields["message"].text)
        kind = message["attachment"]["type"]
    except (KeyError, ValueError, TypeError):
        return graph_error(400, 100, "param message[attachment] is required")
    if kind not in ("image", "audio", "video", "file"):
        return graph_error(400, 100, "param message[attachment][type] is not an asset type")
    if not message["attachment"].get("payload", {}).get("is_reusable"):
        return graph_error(400, 100, "param message[attachment][payload][is_reusable] is false")
    data = fields.get("filedata")
    if data is None or not data.data:
        return graph_error(400, 100, "param filedata is required")
    attachment_id = str(1_857_777_774_000_000 + box.next_id(f"{provider}_upload"))
    box.once(f"{provider}:attachment:{attachment_id}", lambda: kind)
    return Answer.of(200, {"attachment_id": attachment_id})


@route(
    "messenger_upload",
    r"^/v\d+\.\d+/me/message_attachments$",
    lambda path: path.split("?", 1)[0] + "?access_token=<token>",
    secret=DEFAULT_MESSENGER_TOKEN,
)
def messenger_upload(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/me/message_attachments?access_token=...``: a Page's saved asset."""
    offered = parse_qs(req.query).get("access_token", [""])[0]
    if not hmac.compare_digest(offered.encode(), box.secrets["messenger"].encode()):
        return bad_token()
    return _attachment(box, req, "messenger")


@route(
    "instagram_upload",
    r"^/v\d+\.\d+/(?P<account_id>1784\d+)/message_attachments$",
    secret=DEFAULT_INSTAGRAM_TOKEN,
)
def instagram_upload(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/<account id>/message_attachments``, Bearer: a saved asset."""
    if not bearer_ok(req, box.secrets["instagram"]):
        return bad_token()
    return _attachment(box, req, "instagram")
