"""WhatsApp Cloud API, as the sandbox speaks it: ``POST /v<NN>.0/<phone_number_id>/messages``.

Also the Graph error shape the Messenger and Instagram sandboxes share. A recipient
``"0" + code`` (``"0131047"``: no real number starts with 0) answers that documented
error; Instagram account ids (``1784...``) belong to the Instagram route.
"""

from __future__ import annotations

import hmac
from typing import Any

from herald.testing.sandbox.credentials import DEFAULT_WHATSAPP_TOKEN
from herald.testing.sandbox.server import Answer, Incoming, Sandbox, route

#: Error code -> (HTTP status, Meta's title), for recipients "0<code>".
WHATSAPP_ERRORS: dict[int, tuple[int, str]] = {
    131047: (400, "Re-engagement message"),
    131026: (400, "Message undeliverable"),
    131049: (400, "This message was not delivered to maintain healthy ecosystem engagement."),
    131048: (400, "Spam rate limit hit"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    130429: (400, "Rate limit hit"),
    133010: (400, "Phone number not registered"),
    131031: (400, "Account has been locked"),
    131042: (400, "Business eligibility payment issue"),
    368: (400, "Temporarily blocked for policies violations"),
    131000: (500, "Something went wrong"),
    131057: (503, "Account in maintenance mode"),
    133004: (503, "Server temporarily unavailable"),
}
_TYPES = {"text", "image", "video", "audio", "document", "sticker", "template", "interactive"}
_CAPTIONED = {"image", "video", "document"}


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    data: dict[str, Any] | None = None,
) -> Answer:
    """A Graph API error answer: ``{"error": {"message", "type", "code", ...}}``."""
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException"}
    error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    if data:
        error["error_data"] = data
    error["fbtrace_id"] = "AsandboxTrace0"
    return Answer.of(status, {"error": error})


def bad_token() -> Answer:
    """Graph's answer to a missing or wrong access token."""
    return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")


def bearer_ok(req: Incoming, secret: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <secret>``."""
    offered = req.headers.get("authorization", "")
    return hmac.compare_digest(offered.encode(), f"Bearer {secret}".encode())


def _details(text: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "details": text}


def _too_long(value: Any, limit: int) -> bool:
    return not isinstance(value, str) or not value or len(value) > limit


def _interactive_problem(box: dict[str, Any]) -> str | None:
    body = box.get("body")
    if not isinstance(body, dict) or _too_long(body.get("text"), 1024):
        return "interactive body.text is required, at most 1024 characters"
    action: dict[str, Any] = box["action"] if isinstance(box.get("action"), dict) else {}
    if box.get("type") == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "action.buttons must hold 1 to 3 buttons"
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or _too_long(reply.get("title"), 20):
                return "button reply.title is required, at most 20 characters"
            if _too_long(reply.get("id"), 256):
                return "button reply.id is required, at most 256 characters"
        return None
    if box.get("type") != "list" or _too_long(action.get("button"), 20):
        return "interactive type must be button or list; list action.button at most 20"
    sections = action.get("sections")
    rows = (
        [r for s in sections if isinstance(s, dict) for r in s.get("rows") or []]
        if isinstance(sections, list)
        else []
    )
    if not 1 <= len(rows) <= 10:
        return "a list holds 1 to 10 rows"
    if any(not isinstance(r, dict) or _too_long(r.get("title"), 24) for r in rows):
        return "row title is required, at most 24 characters"
    return None


def _template_problem(template: dict[str, Any]) -> str | None:
    language = template.get("language")
    if not template.get("name") or not isinstance(language, dict) or not language.get("code"):
        return "template name and language.code are required"
    for component in template.get("components") or []:
        params = component.get("parameters") if isinstance(component, dict) else None
        for param in params if isinstance(params, list) else []:
            is_text = isinstance(param, dict) and param.get("type") == "text"
            if is_text and _too_long(param.get("text"), 1024):
                return "template text parameter is at most 1024 characters"
    return None


def _problem(doc: Any) -> str | None:
    """Why Meta would refuse this body (code 100), or None."""
    if not isinstance(doc, dict) or doc.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    to, kind = doc.get("to"), doc.get("type", "text")
    if not isinstance(to, str) or not to.isdigit():
        return "to must be a phone number (digits)"
    if kind not in _TYPES or not isinstance(doc.get(kind), dict):
        return f"type must be one of {', '.join(sorted(_TYPES))}, with a {kind} object"
    inner: dict[str, Any] = doc[kind]
    if kind == "text":
        return (
            "text.body is required, at most 4096 characters"
            if _too_long(inner.get("body"), 4096)
            else None
        )
    if kind == "interactive":
        return _interactive_problem(inner)
    if kind == "template":
        return _template_problem(inner)
    if not inner.get("link") and not inner.get("id"):
        return f"{kind} needs a link or an id"
    if "caption" in inner and kind not in _CAPTIONED:
        return f"{kind} does not take a caption"
    return None


@route(
    "whatsapp",
    r"^/v\d+\.\d+/(?P<phone_number_id>(?!1784)\d+)/messages$",
    secret=DEFAULT_WHATSAPP_TOKEN,
)
def whatsapp(box: Sandbox, req: Incoming) -> Answer:
    """``POST /v<NN>.0/<phone_number_id>/messages``: validate, answer, or fail on purpose."""
    if req.method != "POST":
        return graph_error(400, 100, "Unsupported get request.")
    if not bearer_ok(req, box.secrets["whatsapp"]):
        return bad_token()
    doc = req.json()
    problem = _problem(doc)
    if problem:
        return graph_error(400, 100, "Invalid parameter", data=_details(problem))
    to = doc["to"]
    special = WHATSAPP_ERRORS.get(int(to)) if to.startswith("0") else None
    if special is not None:
        status, title = special
        return graph_error(status, int(to), title, data=_details(title))
    wamid = f"wamid.sandbox.{box.next_id('whatsapp')}"
    return Answer.of(
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        },
    )
