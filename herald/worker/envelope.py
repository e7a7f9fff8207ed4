"""Checking a broker message before Celery reads it: every message a worker takes is one
it can decode, or it is refused with a reason (and never stops the worker).

A Celery protocol-2 message on kombu's Redis transport is a JSON envelope (``body``,
``content-type``, ``content-encoding``, ``headers``, ``properties``) whose ``body`` is the
base64 of ``[args, kwargs, embed]`` (docs/contract.md#enqueueing-by-hand-any-language).
Celery and kombu assume a well-formed envelope: a message that is not JSON, or has no
``body``, a ``null`` content type, a non-string task id and the like, raises in the
worker's consumer and ends the worker, or is put back on the queue for the next one.
:func:`check` reads the message the way kombu and Celery will, within bounds (size,
inflated size, nesting depth), and says what is wrong with it.

A message in another serializer Celery knows (pickle, YAML, msgpack) passes here: Celery
refuses it unread, as ``accept_content`` says, and logs it. Any other content type is
refused here.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The content type of Celery's JSON serializer, the one Herald accepts.
JSON_TYPE = "application/json"
#: Serializers Celery knows and Herald does not accept: Celery refuses these unread. (Not
#: kombu's raw ``application/data`` and ``application/text``: those it passes through
#: undecoded, and Celery then fails to read the call: they are refused here.)
OTHER_SERIALIZERS = frozenset(
    {"application/x-python-serialize", "application/x-yaml", "application/x-msgpack"}
)
#: kombu's names of its zlib compression (the only one Herald inflates, bounded).
ZLIB_NAMES = frozenset({"application/x-gzip", "gzip", "zlib"})
#: How deep JSON may nest (json and kombu recurse: ~1,000 levels end in RecursionError).
MAX_DEPTH = 64
#: How many characters of a refused message's task header a reason or an entry keeps.
TASK_SHOWN = 200


class Refused(Exception):
    """Raised when a broker message cannot be handed to Celery; the message says why."""

    def __init__(self, reason: str, task: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        #: The task header when it could be read, else "".
        self.task = task


@dataclass(frozen=True)
class Limits:
    """How large a message may be: the envelope as received, and its body once inflated."""

    envelope_bytes: int
    body_bytes: int


def check(raw: bytes | str, limits: Limits) -> dict[str, Any]:
    """The decoded envelope of ``raw``, or :class:`Refused` with the reason."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limits.envelope_bytes:
        raise Refused(f"message is {len(data)} bytes; the limit is {limits.envelope_bytes}")
    envelope = _json(data, "message")
    if not isinstance(envelope, dict):
        raise Refused(f"message is a JSON {type(envelope).__name__}, not an envelope object")
    headers = envelope.get("headers")
    task = headers.get("task") if isinstance(headers, dict) else None
    shown = task[:TASK_SHOWN] if isinstance(task, str) else ""
    try:
        _check_envelope(envelope, limits)
    except Refused as exc:
        raise Refused(exc.reason, shown) from None
    return envelope


def _check_envelope(envelope: dict[str, Any], limits: Limits) -> None:
    headers, properties = envelope.get("headers"), envelope.get("properties")
    if not isinstance(headers, dict) or not isinstance(properties, dict):
        raise Refused("envelope needs a headers object and a properties object")
    _check_headers(headers)
    _check_properties(properties)
    content_type = envelope.get("content-type")
    if not isinstance(content_type, str) or not content_type:
        raise Refused("envelope content-type must be a text")
    encoding = envelope.get("content-encoding")
    if not isinstance(encoding, str):
        raise Refused("envelope content-encoding must be a text")
    body = envelope.get("body")
    if not isinstance(body, str) or not body:
        raise Refused("envelope body must be a non-empty text")
    if content_type in OTHER_SERIALIZERS:
        return  # Celery refuses it unread, as accept_content says, and logs it
    if content_type != JSON_TYPE:
        raise Refused(f"content-type {content_type[:60]!r} is no serializer's")
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise Refused(f"a JSON body must be utf-8, not {encoding[:40]!r}")
    payload = _body_bytes(body, properties.get("body_encoding"), headers.get("compression"), limits)
    _check_call(_json(payload, "body"))


def _check_headers(headers: dict[str, Any]) -> None:
    for name in ("task", "id"):
        value = headers.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Refused(f"header {name} must be a non-empty text (a Celery protocol-2 message)")
    for name in ("lang", "root_id", "parent_id", "group", "shadow", "origin", "argsrepr"):
        _optional(headers, name, str)
    _optional(headers, "kwargsrepr", str)
    _optional(headers, "compression", str)
    _optional(headers, "retries", int)
    _optional(headers, "ignore_result", bool)
    for name in ("eta", "expires"):
        value = headers.get(name)
        if value is not None and not (isinstance(value, str) and _is_time(value)):
            raise Refused(f"header {name} must be an ISO 8601 time or null")
    limit = headers.get("timelimit")
    if limit is not None and not (
        isinstance(limit, list)
        and len(limit) == 2
        and all(v is None or _is_number(v) for v in limit)
    ):
        raise Refused("header timelimit must be [soft, hard] in seconds, or null")


def _check_properties(properties: dict[str, Any]) -> None:
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise Refused("property delivery_tag must be a non-empty text")
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(
        isinstance(info.get(name), str) for name in ("exchange", "routing_key")
    ):
        # kombu reads both when it acks or restores a message: a KeyError there drops the
        # worker's broker connection.
        raise Refused("property delivery_info must be an object with exchange and routing_key")
    encoding = properties.get("body_encoding")
    if encoding not in (None, "base64"):
        raise Refused("property body_encoding must be base64 (or absent)")
    _optional(properties, "priority", int)


def _optional(found: dict[str, Any], name: str, kind: type) -> None:
    value = found.get(name)
    # bool is an int to Python, not to JSON: a true where a number belongs is refused.
    if value is not None and (type(value) is not kind):
        raise Refused(f"{name} must be {kind.__name__} or null")


def _body_bytes(body: str, encoding: Any, compression: Any, limits: Limits) -> bytes:
    """The body's bytes as kombu will read them, never inflated past the limit."""
    data = body.encode()
    if encoding == "base64":
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("body is not base64, as body_encoding says") from None
    if compression is not None:
        if compression not in ZLIB_NAMES:
            raise Refused(f"compression {compression[:40]!r} is not taken (zlib only)")
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(data, limits.body_bytes + 1)
        except zlib.error:
            raise Refused("body does not inflate as its compression says") from None
        if len(data) > limits.body_bytes or inflater.unconsumed_tail:
            raise Refused(f"body inflates past {limits.body_bytes} bytes")
    if len(data) > limits.body_bytes:
        raise Refused(f"body is {len(data)} bytes; the limit is {limits.body_bytes}")
    return data


def _check_call(call: Any) -> None:
    """The body is ``[args, kwargs, embed]``, as Celery's protocol 2 has it."""
    if not (isinstance(call, list) and len(call) == 3):
        raise Refused("body must be [args, kwargs, embed]")
    args, kwargs, embed = call
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(embed, dict):
        raise Refused("body must be [args (a list), kwargs (an object), embed (an object)]")
    for name in ("callbacks", "errbacks", "chain"):
        links = embed.get(name)
        if links is not None and not (
            isinstance(links, list) and all(isinstance(x, dict) for x in links)
        ):
            raise Refused(f"embed {name} must be a list of signatures or null")
    chord = embed.get("chord")
    if chord is not None and not isinstance(chord, dict):
        raise Refused("embed chord must be a signature or null")


def _json(data: bytes, what: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{what} is not UTF-8") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise Refused(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise Refused(f"{what} is not JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    if _depth(value) > MAX_DEPTH:
        raise Refused(f"{what} nests deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deep ``value`` nests (iterative: no recursion to overflow)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


#: What the transport calls with each refused message: (task, raw text, reason).
RefusalSink = Callable[[str, str, str], None]
