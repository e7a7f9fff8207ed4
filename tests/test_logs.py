"""Log lines cannot be forged: control characters in what Herald logs are escaped."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest

from herald.worker import logs
from herald.worker.logs import EscapeControls, escape

FORGED = "run-1\r\n2026-11-24 10:00:00 INFO herald.outcomes: job admin sent"


@pytest.fixture
def installed() -> Iterator[None]:
    """:func:`logs.install` for one test; the record factory restored after it."""
    saved = logging.getLogRecordFactory()
    logs.install()
    yield
    logging.setLogRecordFactory(saved)


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the ``herald`` and ``other`` loggers write, one record per line."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    loggers = [logging.getLogger("herald"), logging.getLogger("other")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    yield out
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("nul\x00 del\x7f esc\x1b[31m", "nul\\x00 del\\x7f esc\\x1b[31m"),
        ("nel\x85 ls\u2028 ps\u2029", "nel\\x85 ls\\u2028 ps\\u2029"),
        ("bidi \u202egpj.exe", "bidi \\u202egpj.exe"),
        ("plain Olá 👍 $10", "plain Olá 👍 $10"),
    ],
)
def test_escape_rewrites_what_is_not_printable(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_a_job_id_with_crlf_is_one_line_in_the_log(installed: None, lines: io.StringIO) -> None:
    logging.getLogger("herald.outcomes").warning("job %s failed: %s", FORGED, "invalid_job")
    assert lines.getvalue().splitlines() == [
        "herald.outcomes: job run-1\\r\\n2026-11-24 10:00:00 INFO herald.outcomes: job admin sent"
        " failed: invalid_job"
    ]


def test_the_message_itself_is_escaped(installed: None, lines: io.StringIO) -> None:
    logging.getLogger("herald.pipeline").info(f"job {FORGED} done")  # an f-string message
    assert len(lines.getvalue().splitlines()) == 1


def test_numbers_mappings_and_objects_keep_their_formatting(
    installed: None, lines: io.StringIO
) -> None:
    class Loud:
        def __str__(self) -> str:
            return "x\ny"

        def __repr__(self) -> str:
            return "Loud(\n)"

    log = logging.getLogger("herald.delivery")
    log.info("%d parts, %.1fs, %s, %r, %s", 3, 0.25, Decimal("1.5"), Loud(), Loud())
    log.info("%(job)s: %(n)d", {"job": "a\rb", "n": 7})
    assert lines.getvalue().splitlines() == [
        "herald.delivery: 3 parts, 0.2s, 1.5, Loud(\\n), x\\ny",
        "herald.delivery: a\\rb: 7",
    ]


def test_other_loggers_are_left_alone(installed: None, lines: io.StringIO) -> None:
    logging.getLogger("other").info("a%sb", "\n")
    assert lines.getvalue() == "other: a\nb\n"


def test_install_twice_escapes_once(lines: io.StringIO) -> None:
    saved = logging.getLogRecordFactory()
    try:
        logs.install()
        logs.install()
        logging.getLogger("herald.x").info("%s", "back\\slash\n")
    finally:
        logging.setLogRecordFactory(saved)
    assert lines.getvalue() == "herald.x: back\\slash\\n\n"


def test_the_filter_works_on_a_handler_too(lines: io.StringIO) -> None:
    handler = logging.getLogger("herald").handlers[0]
    handler.addFilter(EscapeControls())
    try:
        logging.getLogger("herald.tasks").error("job %s", "a\nb")
    finally:
        handler.removeFilter(handler.filters[0])
    assert lines.getvalue() == "herald.tasks: job a\\nb\n"
