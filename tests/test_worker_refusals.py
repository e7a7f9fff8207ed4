"""Broker messages a worker cannot read are dead-lettered and the worker goes on.

Each message is pushed raw onto the worker's queue (as a broken producer in any language
could), through a real worker on the real Redis transport.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from herald.contract.names import DEAD_STREAM, SEND_TASK
from herald.testing.processes import protocol_v2
from herald.worker.envelope import MAX_DEPTH, Limits, Refused, check
from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.usefixtures("worker")

LIMITS = Limits(envelope_bytes=2 * 1024 * 1024, body_bytes=1024 * 1024)


def envelope(marker: str, **change: Any) -> dict[str, Any]:
    """A well-formed protocol-2 envelope of a job whose id is ``marker``, then changed."""
    message = protocol_v2(SEND_TASK, {"job": make_job(job_id=marker)}, "q")
    for path, value in change.items():
        *parents, last = path.split("__")
        where = message
        for name in parents:
            where = where[name]
        if value is DROP:
            where.pop(last)
        else:
            where[last] = value
    return message


DROP = object()


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


#: marker -> (the raw message, words the reason holds)
BROKEN: dict[str, Callable[[str], tuple[bytes, str]]] = {
    "not json": lambda m: (f"not json {m}".encode(), "not JSON"),
    "not utf-8": lambda m: (b"\xff\xfe" + m.encode(), "not UTF-8"),
    "a number": lambda m: (b"123", "not an envelope"),
    "a list": lambda m: (json.dumps([m]).encode(), "not an envelope"),
    "body not base64": lambda m: (
        json.dumps(envelope(m, body="%%% not base64 %%%")).encode(),
        "not base64",
    ),
    "content-type null": lambda m: (
        json.dumps(envelope(m, **{"content-type": None})).encode(),
        "content-type",
    ),
    "content-type no serializer's": lambda m: (
        json.dumps(envelope(m, **{"content-type": "a\r\nX-Injected: 1"})).encode(),
        "no serializer's",
    ),
    "raw bytes content-type": lambda m: (
        json.dumps(envelope(m, **{"content-type": "application/data"})).encode(),
        "no serializer's",
    ),
    "delivery_info without exchange": lambda m: (
        json.dumps(envelope(m, properties__delivery_info={"routing_key": "q"})).encode(),
        "exchange and routing_key",
    ),
    "no body": lambda m: (json.dumps(envelope(m, body=DROP)).encode(), "body"),
    "body not a call": lambda m: (
        json.dumps(envelope(m, body=b64({"job": m}))).encode(),
        "[args, kwargs, embed]",
    ),
    "unknown body_encoding": lambda m: (
        json.dumps(envelope(m, properties__body_encoding="rot13")).encode(),
        "body_encoding",
    ),
    "id a number": lambda m: (json.dumps(envelope(m, headers__id=42)).encode(), "header id"),
    "id null": lambda m: (json.dumps(envelope(m, headers__id=None)).encode(), "header id"),
    "no id": lambda m: (json.dumps(envelope(m, headers__id=DROP)).encode(), "header id"),
    "nested 950 deep": lambda m: (
        json.dumps(envelope(m, body=b64([[deep(950)], {}, {}]))).encode(),
        "nests deeper",
    ),
    "inflates past the cap": lambda m: (
        json.dumps(
            envelope(
                m,
                headers__compression="application/x-gzip",
                body=base64.b64encode(zlib.compress(b" " * (64 * 1024 * 1024))).decode(),
            )
        ).encode(),
        "inflates past",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_message_that_cannot_be_read_is_refused_with_its_reason(case: str) -> None:
    raw, words = BROKEN[case](f"m-{uuid.uuid4().hex[:8]}")
    with pytest.raises(Refused) as refused:
        check(raw, LIMITS)
    assert words in refused.value.reason


def test_a_well_formed_message_passes() -> None:
    message = envelope("ok-1")
    assert check(json.dumps(message).encode(), LIMITS) == message
    assert check(json.dumps(message), LIMITS) == message
    nested = envelope("ok-2", body=b64([[deep(MAX_DEPTH - 4)], {}, {}]))
    assert check(json.dumps(nested), LIMITS) == nested


def test_another_serializer_is_left_to_celery_which_refuses_it_unread() -> None:
    pickled = envelope("p-1", **{"content-type": "application/x-python-serialize"})
    pickled["body"] = base64.b64encode(b"\x80\x04not really").decode()
    assert check(json.dumps(pickled), LIMITS) == pickled


def test_every_broken_message_is_dead_lettered_and_the_worker_goes_on(
    celery_app: Any, settings: Any, rclient: Any, outcomes: Outcomes
) -> None:
    # Given a worker, and one raw message of every broken kind pushed onto its queue,
    markers = {case: f"m-{uuid.uuid4().hex[:8]}" for case in BROKEN}
    start = (
        rclient.xinfo_stream(DEAD_STREAM)["last-generated-id"]
        if rclient.exists(DEAD_STREAM)
        else "0-0"
    )
    for case, marker in markers.items():
        raw, _ = BROKEN[case](marker)
        rclient.lpush(settings.queue, raw)
    # when the worker has taken them,
    deadline = time.monotonic() + 30
    entries: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        entries = [f for _, f in rclient.xrange(DEAD_STREAM, min=f"({start}")]
        if len(entries) >= len(BROKEN):
            break
        time.sleep(0.1)
    # then each is in the dead-letter stream with its reason (those with a readable task
    # header name it), none is left on the queue,
    assert len(entries) == len(BROKEN), entries
    assert all(entry["reason"] for entry in entries)
    readable = [e for e in entries if e["task"] == SEND_TASK]
    assert len(readable) >= 8
    assert rclient.llen(settings.queue) == 0
    # and the worker still sends a normal job.
    job = make_job()
    celery_app.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue)
    assert outcomes.wait(job["job_id"]).event == "message.sent"
