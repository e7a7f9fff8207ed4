"""Telegram Bot API, as the sandbox speaks it: ``POST /bot<TOKEN>/<method>``."""

from __future__ import annotations

import hmac
import json
import re
import time
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_TELEGRAM_TOKEN
from herald.testing.sandbox.multipart import form, is_multipart
from herald.testing.sandbox.server import FLOOD_RETRY_AFTER, Answer, Incoming, Sandbox, route

#: Where the Telegram chat ``"migrated"`` moved to.
MIGRATED_CHAT_ID = -1001234567890

_TELEGRAM_MEDIA = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendAudio": "audio",
}
#: Chat ids that always fail: (status, description, parameters).
_TELEGRAM_CHATS: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user", None),
    "missing": (400, "Bad Request: chat not found", None),
    "flood": (
        429,
        f"Too Many Requests: retry after {FLOOD_RETRY_AFTER}",
        {"retry_after": FLOOD_RETRY_AFTER},
    ),
    "migrated": (
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": MIGRATED_CHAT_ID},
    ),
}


def _tg_error(status: int, description: str, parameters: dict[str, Any] | None = None) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer.of(status, body)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _tg_check(method: str, params: dict[str, Any]) -> str | None:
    """The Bad Request description for invalid parameters, or None."""
    if params.get("chat_id") in (None, ""):
        return "chat_id is empty"
    if method == "sendMessage":
        text = params.get("text")
        if not isinstance(text, str) or not text:
            return "message text is empty"
        if _utf16_len(text) > 4096:
            return "message is too long"
    else:
        kind = _TELEGRAM_MEDIA[method]
        if not params.get(kind):
            return f"there is no {kind} in the request"
        caption = params.get("caption")
        if isinstance(caption, str) and _utf16_len(caption) > 1024:
            return "message caption is too long"
    markup = params.get("reply_markup")
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    for button in (b for row in rows for b in row if isinstance(b, dict)):
        if len(str(button.get("callback_data", "")).encode()) > 64:
            return "BUTTON_DATA_INVALID"
    return None


def _params(req: Incoming) -> tuple[dict[str, Any], set[str]]:
    """The call's parameters (JSON, or a multipart form whose files are uploads) and the
    names of the parameters that are uploaded files."""
    if not is_multipart(req.headers):
        doc = req.json()
        return (doc if isinstance(doc, dict) else {}), set()
    fields = form(req.headers, req.body)
    params: dict[str, Any] = {}
    for name, part in fields.items():
        if part.filename is not None:
            params[name] = f"attach://{part.filename}" if part.data else ""
            continue
        try:
            params[name] = json.loads(part.text) if name == "reply_markup" else part.text
        except ValueError:
            params[name] = part.text
    return params, {n for n, p in fields.items() if p.filename is not None and p.data}


def _bot_id(token: str) -> int:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def _hide_token(path: str) -> str:
    return re.sub(r"^/bot[^/]+/", "/bot<token>/", path)


@route(
    "telegram",
    r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$",
    _hide_token,
    secret=DEFAULT_TELEGRAM_TOKEN,
)
def telegram(box: Sandbox, req: Incoming) -> Answer:
    """``POST /bot<TOKEN>/<method>``: sendMessage and the single-media sends."""
    if not hmac.compare_digest(req.match["token"], box.secrets["telegram"]):
        return _tg_error(401, "Unauthorized")
    method = req.match["method"]
    if method != "sendMessage" and method not in _TELEGRAM_MEDIA:
        return _tg_error(404, "Not Found")
    params, uploaded = _params(req)
    problem = _tg_check(method, params)
    if problem:
        return _tg_error(400, f"Bad Request: {problem}")
    chat = str(params["chat_id"])
    if chat in _TELEGRAM_CHATS:
        return _tg_error(*_TELEGRAM_CHATS[chat])
    result: dict[str, Any] = {
        "message_id": box.next_id(f"telegram:{chat}"),
        "from": {"id": _bot_id(box.secrets["telegram"]), "is_bot": True, "first_name": "Herald"},
        "chat": {"id": int(chat) if re.fullmatch(r"-?\d+", chat) else chat, "type": "private"},
        "date": int(time.time()),
    }
    if method == "sendMessage":
        result["text"] = params["text"]
    else:
        field = _TELEGRAM_MEDIA[method]
        if field in uploaded:  # a new file: it gets an id of its own, reusable later
            number = box.next_id("telegram_upload")
            file_id = f"sandbox-upload-{number}"
            box.once(f"telegram:file:{file_id}", lambda: field)
        else:
            file_id = str(params[field])
            if (
                file_id.startswith("sandbox-upload-")
                and box.recall(f"telegram:file:{file_id}") != field
            ):
                return _tg_error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        file = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
        result[_TELEGRAM_MEDIA[method]] = [file] if method == "sendPhoto" else file
        if params.get("caption"):
            result["caption"] = params["caption"]
    if params.get("reply_markup"):
        result["reply_markup"] = params["reply_markup"]
    return Answer.of(200, {"ok": True, "result": result})
