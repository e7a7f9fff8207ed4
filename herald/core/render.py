"""Content rendering (docs/contract.md#how-content-is-rendered): variables and snippets.

One regular expression finds snippets (``/name``) and variables (``$ns.path``,
``${ns.path|fallback}``), and a single :func:`re.sub` replaces them, so an inserted
value is never read as template again: values are data. Pure functions, no IO.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import assert_never

from pydantic import JsonValue

from herald.contract.errors import InvalidContent
from herald.contract.job import (
    AnyMessage,
    Attachment,
    Contact,
    CustomPayload,
    EmailMessage,
    MediaMessage,
    MessengerTemplate,
    QuickReply,
    TextMessage,
    WhatsAppTemplate,
)

Escape = Callable[[str], str]

# A name: letters, digits and "_", with inner "-"; so "$contact.firstname-" and
# "$contact.firstname." end before the punctuation.
_NAME = r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*"
_PATH = rf"{_NAME}(?:\.{_NAME})+"
_TOKEN = re.compile(
    # The atomic group keeps "/hours-x/" from matching as a shorter "/hours".
    rf"(?:\A|(?<=\s))/(?P<snippet>(?>{_NAME}))(?![\w/])"
    rf"|\$\{{(?P<braced>{_PATH})(?:\|(?P<fallback>[^}}]*))?\}}"
    rf"|\$(?P<bare>{_PATH})"
)


#: Characters one message may render to, all its texts together (the pipeline passes
#: ``HERALD_MAX_PAYLOAD_BYTES``): rendering stops there, before building more.
DEFAULT_BUDGET = 256 * 1024


class Budget:
    """What is left of a message's rendering budget, in characters."""

    def __init__(self, chars: int) -> None:
        self.limit = chars
        self.left = chars

    def spend(self, piece: str) -> str:
        """``piece``, once it fits; :class:`InvalidContent` when it does not."""
        self.left -= len(piece)
        if self.left < 0:
            raise InvalidContent(
                f"the message renders to over {self.limit} characters"
                " (HERALD_MAX_PAYLOAD_BYTES); no channel takes that much"
            )
        return piece


@dataclass(frozen=True)
class RenderContext:
    """What a job's content may refer to; ``now`` is aware and in the workspace zone.

    The budget is shared by every text of the message rendered with this context.
    """

    contact: Contact
    assignee: Mapping[str, JsonValue] | None
    variables: Mapping[str, JsonValue]
    now: datetime
    snippets: Mapping[str, str] = field(default_factory=dict)
    budget: Budget = field(default_factory=lambda: Budget(DEFAULT_BUDGET))


def _verbatim(text: str) -> str:
    return text


def _format(value: JsonValue) -> str:
    """A value as text; ``""`` means empty (``null``, ``""``, or not writable)."""
    if value is None or isinstance(value, str):
        return value or ""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        # An int past Python's digit limit, a cycle: render as empty rather than fail a send.
        return ""


def _lookup(value: JsonValue, path: list[str]) -> JsonValue:
    """Follow ``path`` through objects (and arrays, by index); ``None`` when absent."""
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdecimal() and len(key) < 10:
            index = int(key)  # short: int() refuses numbers of thousands of digits
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _roots(ctx: RenderContext) -> dict[str, JsonValue]:
    """Every namespace a variable may start with, mapped to its value."""
    fields = ctx.contact.fields
    name = " ".join(_format(fields.get(k)) for k in ("firstname", "lastname")).strip()
    contact: dict[str, JsonValue] = {
        **fields,
        "id": ctx.contact.id,
        "name": name or fields.get("name"),
    }
    now = ctx.now
    date = f"{now.year:04d}-{now.month:02d}-{now.day:02d}"
    time = f"{now.hour:02d}:{now.minute:02d}"
    system: dict[str, JsonValue] = {
        "current_datetime": f"{date} {time}",
        "current_date": date,
        "current_time": time,
    }
    assignee: dict[str, JsonValue] = dict(ctx.assignee or {})
    # The reserved namespaces win over a (contract-breaking) variable of the same name.
    return {**ctx.variables, "contact": contact, "assignee": assignee, "system": system}


@dataclass(frozen=True)
class _Pass:
    """One rendering pass over a text: the replacement for each token found."""

    roots: Mapping[str, JsonValue]
    snippets: Mapping[str, str]
    escape: Escape
    budget: Budget

    def run(self, text: str) -> str:
        """``text`` rendered, each piece paid from the budget as it is made."""
        pieces, last = [], 0
        for match in _TOKEN.finditer(text):
            pieces.append(self.budget.spend(text[last : match.start()]))
            pieces.append(self.budget.spend(self._replace(match)))
            last = match.end()
        pieces.append(self.budget.spend(text[last:]))
        return "".join(pieces)

    def _replace(self, match: re.Match[str]) -> str:
        name = match["snippet"]
        if name is not None:
            body = self.snippets.get(name)
            if body is None:
                return match[0]
            # A snippet is template (its variables render) but snippets do not nest. It
            # renders within what is left, and the outer pass pays for what it made.
            return replace(self, snippets={}, budget=Budget(self.budget.left)).run(body)
        head, *path = (match["braced"] or match["bare"]).split(".")
        if head not in self.roots and match["braced"] is None:
            return match[0]  # not a variable at all: "$10.50", "US$5.00"
        # A braced variable is one whatever its namespace: an unknown one takes the fallback.
        value = _format(_lookup(self.roots[head], path)) if head in self.roots else ""
        if value:
            return self.escape(value)
        fallback = match["fallback"]
        return match[0] if fallback is None else self.escape(fallback)


def render_text(
    text: str,
    ctx: RenderContext,
    *,
    snippets: bool = True,
    escape: Escape | None = None,
) -> str:
    """Render variables (and, unless ``snippets=False``, snippets) in ``text``.

    ``escape`` is applied to every inserted value and fallback, never to the
    template. Unknown or empty variables without a fallback, unknown snippets and
    text that is no variable (``$10``) stay as written. Raises only
    :class:`InvalidContent`, once the message's rendering budget is spent.
    """
    if "$" not in text and "/" not in text:
        return ctx.budget.spend(text)
    return _Pass(
        roots=_roots(ctx),
        snippets=ctx.snippets if snippets else {},
        escape=escape or _verbatim,
        budget=ctx.budget,
    ).run(text)


def _plain(text: str, ctx: RenderContext) -> str:
    return render_text(text, ctx, snippets=False)


def _render_json(value: JsonValue, ctx: RenderContext) -> JsonValue:
    """Render every string inside a JSON value (not the object keys), without snippets."""
    if isinstance(value, str):
        return _plain(value, ctx)
    if isinstance(value, list):
        return [_render_json(item, ctx) for item in value]
    if isinstance(value, dict):
        return {key: _render_json(item, ctx) for key, item in value.items()}
    return value


def _render_reply(reply: QuickReply, ctx: RenderContext) -> QuickReply:
    update = {"title": _plain(reply.title, ctx)}
    if reply.payload is not None:
        update["payload"] = _plain(reply.payload, ctx)
    return reply.model_copy(update=update)


def _render_attachment(attachment: Attachment, ctx: RenderContext) -> Attachment:
    if attachment.caption is None:
        return attachment
    return attachment.model_copy(update={"caption": render_text(attachment.caption, ctx)})


def _render_text_message(message: TextMessage, ctx: RenderContext) -> TextMessage:
    update: dict[str, object] = {"text": render_text(message.text, ctx)}
    if message.quick_replies is not None:
        update["quick_replies"] = [_render_reply(r, ctx) for r in message.quick_replies]
    return message.model_copy(update=update)


def _render_email(message: EmailMessage, ctx: RenderContext) -> EmailMessage:
    update: dict[str, object] = {
        "subject": _plain(message.subject, ctx),
        "html": render_text(message.html, ctx, escape=html.escape),
    }
    if message.text is not None:
        update["text"] = render_text(message.text, ctx)
    return message.model_copy(update=update)


def render_message(message: AnyMessage, ctx: RenderContext) -> AnyMessage:
    """A copy of ``message`` (same type) with its content rendered.

    Snippets apply to texts, captions and email bodies; subjects, quick replies and
    template or custom payloads get variables only. Email HTML escapes its values.
    """
    match message:
        case TextMessage():
            return _render_text_message(message, ctx)
        case MediaMessage():
            attachments = [_render_attachment(a, ctx) for a in message.attachments]
            return message.model_copy(update={"attachments": attachments})
        case EmailMessage():
            return _render_email(message, ctx)
        case WhatsAppTemplate():
            components = [_render_json(c, ctx) for c in message.components]
            return message.model_copy(update={"components": components})
        case MessengerTemplate() | CustomPayload():
            return message.model_copy(update={"payload": _render_json(message.payload, ctx)})
        case _:
            assert_never(message)
