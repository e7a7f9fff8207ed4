"""Log lines that cannot be forged: what Herald logs has its control characters escaped.

Log lines carry the producer's text (a job id, a provider's answer); a CR or LF in it would
start a line of the sender's choosing, an ANSI escape would repaint the terminal, a bidi
override would reorder what an operator reads. :class:`EscapeControls` rewrites every
character ``str.isprintable()`` refuses (every one but the space: TAB and LF included, as no
value Herald logs needs them) as a Python escape (``\\r``, ``\\x85``, ``\\u2028``), in the message
and in each argument. :func:`install` applies it to every record of the ``herald`` loggers
when it is made, so it holds whatever handlers Celery sets up later.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Mapping
from typing import Any

#: The loggers whose records are escaped (and their children).
LOGGER = "herald"
#: Marks the record factory :func:`install` made, so a second call adds nothing.
_MARK = "_herald_escapes"
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every character ``str.isprintable()`` refuses written as an escape."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class _Shown:
    """An argument that is neither text nor a number: formatted by ``%s`` or ``%r``, escaped."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return escape(repr(self.value))


def _safe(value: object) -> object:
    if isinstance(value, str):
        return escape(value)
    if value is None or isinstance(value, numbers.Number | _Shown):
        return value  # kept as it is, so %d and %.1f still format it
    return _Shown(value)


class EscapeControls(logging.Filter):
    """Escapes control characters in the records of the logger ``name`` and its children
    (of every logger when ``name`` is empty). Never drops a record.

    Attach it to a handler, or let :func:`install` apply it to every ``herald`` record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if super().filter(record):
            record.msg = _safe(record.msg)
            args = record.args
            if isinstance(args, Mapping):
                record.args = {key: _safe(value) for key, value in args.items()}
            elif args:
                record.args = tuple(_safe(value) for value in args)
        return True


def install() -> None:
    """Escape control characters in every record the ``herald`` loggers make, from now on.

    Call it once at worker start; calling it again changes nothing. It wraps the log record
    factory rather than adding a filter: a logger's filters do not see its children's
    records, and handlers are replaced when Celery configures logging.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return
    escaping = EscapeControls(LOGGER)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        escaping.filter(record)
        return record

    setattr(factory, _MARK, True)
    made: Callable[..., logging.LogRecord] = factory
    logging.setLogRecordFactory(made)
