"""Hostile payloads through a real worker: each ends in exactly one outcome event or one
``herald:dead`` entry, and the worker stays up, bounded in memory, and still sends.

Hypothesis makes the payloads: raw broker messages with broken envelopes, and jobs with
wrong types, huge and deep values, control characters and lone surrogates, variables and
snippets that look recursive, and repeated job ids. They are pushed raw onto the queue of
a ``herald worker`` child process (its own Redis, queue and outcome stream), then counted.

``HERALD_FUZZ_EXAMPLES`` sets how many (300 by default; the closing figures used 5,000):

    HERALD_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py -s
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.contract.names import DEAD_STREAM, SEND_TASK
from herald.testing.processes import RedisServer, WorkerProcess, protocol_v2
from herald.worker.envelope import OTHER_SERIALIZERS, Limits, Refused, check
from tests.conftest import make_job

EXAMPLES = int(os.environ.get("HERALD_FUZZ_EXAMPLES", "300"))
RUN = uuid.uuid4().hex[:8]
#: The worker's envelope limits (4 x the default payload cap), as the app sets them.
LIMITS = Limits(envelope_bytes=4 * 262144 * 4 // 3 + 64 * 1024, body_bytes=4 * 262144)

pytestmark = pytest.mark.timeout(600)

HOSTILE_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates included
    st.sampled_from(
        [
            "\r\n",
            "a\r\nX-Injected: 1",
            "\u2028",
            "\x85",
            "\x0b\x0c",
            "\x00",
            "\x7f",
            "\ud800",
            "$contact.firstname",
            "${contact.email|$contact.email}",
            "$a.b " * 200,
            "/hours /hours",
            "$trigger.$trigger.x",
            "😀" * 3000,
        ]
    ),
    st.integers(1000, 320_000).map(lambda n: "x" * n),
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=12,
)
DEEP = st.integers(20, 900).map(lambda n: json.loads("[" * n + "1" + "]" * n))
HOSTILE = st.one_of(JSON_VALUES, DEEP)
#: Where a job gets a hostile value.
PATHS = [
    ("job_id",),
    ("contact",),
    ("contact", "id"),
    ("contact", "fields"),
    ("contact", "fields", "firstname"),
    ("contact", "channels"),
    ("message",),
    ("message", "text"),
    ("message", "type"),
    ("variables",),
    ("variables", "a"),
    ("channel",),
    ("channel_responses",),
    ("channel_responses", "tg"),
    ("failure_branch",),
    ("enqueued_at",),
    ("workflow",),
    ("assignee",),
    ("colour",),
]
ENVELOPE_PATHS = [
    ("body",),
    ("content-type",),
    ("content-type",),
    ("content-encoding",),
    ("headers",),
    ("headers", "id"),
    ("headers", "task"),
    ("headers", "eta"),
    ("headers", "retries"),
    ("headers", "timelimit"),
    ("headers", "compression"),
    ("properties",),
    ("properties", "body_encoding"),
    ("properties", "delivery_tag"),
    ("properties", "delivery_info"),
]


def put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` in ``target`` to ``value`` (a path through a non-object is dropped)."""
    for name in path[:-1]:
        nxt = target.get(name)
        if not isinstance(nxt, dict):
            return
        target = nxt
    target[path[-1]] = value


@dataclass
class Ledger:
    """What each pushed payload must end in."""

    events: Counter[str] = field(default_factory=Counter)  # outcome key -> payloads
    objectless: int = 0  # jobs that are not objects: an event with job_id "" and a dead entry
    broken: int = 0  # envelopes the worker cannot read: a dead entry each
    unread: int = 0  # other serializers: refused unread by Celery
    pushed: int = 0


def usable_id(value: Any) -> str | None:
    """The job_id an event repeats from a payload (docs/contract.md#outcome-events)."""
    if isinstance(value, str) and value and len(value) <= 512 and value.isprintable():
        return value
    return None


@st.composite
def payloads(draw: st.DrawFn) -> tuple[bytes, str, Any]:
    """A raw broker message, with the kind of end it must have."""
    task_id = str(uuid.uuid4())
    job: Any = make_job([{"channel_id": "tg", "identifier": f"fz-{task_id[:8]}"}])
    if draw(st.integers(0, 9)) == 0:
        job["job_id"] = f"fz-again-{draw(st.integers(0, 9))}-{RUN}"  # an id used again
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=3)):
        put(job, path, draw(HOSTILE))
    if draw(st.integers(0, 14)) == 0:
        job = draw(HOSTILE)  # not an object at all, mostly
    message = protocol_v2(SEND_TASK, {"job": job}, "q")
    message["headers"]["id"] = task_id
    kind = draw(st.sampled_from(["job", "job", "job", "envelope", "bytes"]))
    if kind == "envelope":
        put(message, draw(st.sampled_from(ENVELOPE_PATHS)), draw(HOSTILE))
    if draw(st.integers(0, 30)) == 0:
        message["content-type"] = draw(st.sampled_from(sorted(OTHER_SERIALIZERS)))
    try:
        raw = json.dumps(message).encode()
    except (ValueError, RecursionError):
        raw = json.dumps({"unencodable": True}).encode()
    if kind == "bytes":
        raw = draw(st.binary(max_size=200)) + base64.b64encode(raw[:50])
    return raw, task_id, job


def expect(ledger: Ledger, raw: bytes, task_id: str, job: Any) -> None:
    """Book what ``raw`` must end in, as the worker reads it."""
    ledger.pushed += 1
    try:
        envelope = check(raw, LIMITS)
    except Refused:
        ledger.broken += 1
        return
    if envelope["content-type"] in OTHER_SERIALIZERS:
        ledger.unread += 1  # Celery refuses it unread and logs it: no event, no entry
        return
    if not isinstance(job, dict):
        ledger.objectless += 1
        return
    key = usable_id(job.get("job_id")) or task_id
    ledger.events[key] += 1


@pytest.fixture
def fuzz_worker(
    herald_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[WorkerProcess, RedisServer, str, str]]:
    server = RedisServer(tmp_path / "redis").start()
    stream, queue = f"herald:events:fuzz-{uuid.uuid4().hex[:6]}", "herald-fuzz"
    env = {
        **os.environ,
        **herald_env,
        "HERALD_BROKER_URL": server.url,
        "HERALD_REDIS_URL": server.url,
        "HERALD_EVENTS_STREAM": stream,
        "HERALD_QUEUE": queue,
        "HERALD_RATE_LIMITS": json.dumps({"telegram": {}, "custom": {}}),
        "HERALD_RETRY_MAX_ATTEMPTS": "2",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=8).start()
    yield worker, server, stream, queue
    if worker.alive:
        worker.kill()
    server.stop()


def events_of(events: list[dict[str, str]], keys: list[str]) -> list[str]:
    return [f["data"][:300] for f in events if f["job_id"] in keys]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_every_hostile_payload_ends_in_one_event_or_one_dead_entry(
    fuzz_worker: tuple[WorkerProcess, RedisServer, str, str],
) -> None:
    worker, server, stream, queue = fuzz_worker
    client = redis.Redis.from_url(server.url, decode_responses=True)
    assert worker.process is not None
    pid = worker.process.pid
    ledger = Ledger()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def push(data: st.DataObject) -> None:
        raw, task_id, job = data.draw(payloads())
        expect(ledger, raw, task_id, job)
        client.lpush(queue, raw)

    # Given a worker and EXAMPLES hostile payloads pushed raw onto its queue,
    push()
    # when it has taken them all,
    expected_events = len(ledger.events) + ledger.objectless
    expected_dead = ledger.broken + ledger.objectless
    deadline = time.monotonic() + 300
    events: list[dict[str, str]] = []
    dead: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        events = [f for _, f in client.xrange(stream)]
        dead = [f for _, f in client.xrange(DEAD_STREAM)]
        done = len(events) >= expected_events and len(dead) >= expected_dead
        if done and client.llen(queue) == 0:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # anything extra would show up now
    events = [f for _, f in client.xrange(stream)]
    dead = [f for _, f in client.xrange(DEAD_STREAM)]
    by_key = Counter(f["job_id"] for f in events)
    print(
        f"\nfuzz: {ledger.pushed} payloads, {len(events)} events, {len(dead)} dead entries,"
        f" {ledger.broken} unreadable envelopes, {ledger.unread} in other serializers,"
        f" {ledger.objectless} non-object jobs,"
        f" {sum(n - 1 for n in ledger.events.values())} repeated ids,"
        f" worker peak RSS {peak_rss_mb(pid):.0f} MB"
    )
    # then every job has exactly one event under its key, every payload that is not an
    # object has one event with job_id "" and one dead entry, every unreadable envelope
    # one dead entry,
    got = {k: n for k, n in by_key.items() if k}
    missing = sorted(set(ledger.events) - set(got))[:5]
    extra = sorted(set(got) - set(ledger.events))[:5]
    twice = sorted(k for k, n in got.items() if n > 1)[:5]
    assert not (missing or extra or twice), (missing, extra, twice, events_of(events, missing))
    assert by_key[""] == ledger.objectless
    assert len(dead) == expected_dead
    # the worker never restarted and stayed bounded in memory,
    assert worker.alive and worker.process.pid == pid
    assert peak_rss_mb(pid) < 400
    # and it still sends a normal job.
    job = make_job([{"channel_id": "tg", "identifier": "after-fuzz"}])
    client.lpush(queue, json.dumps(protocol_v2(SEND_TASK, {"job": job}, queue)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [f for _, f in client.xrange(stream) if f["job_id"] == job["job_id"]]
        if found:
            assert found[0]["event"] == "message.sent"
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the worker did not send a normal job after the fuzz")
