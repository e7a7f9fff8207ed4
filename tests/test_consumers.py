"""Downstream consumers read the outcome stream through a consumer group: each event goes
to one consumer, is acked once handled, and a killed consumer's unacked events are taken
over by another after an idle time (at least once; the job_id is the dedupe key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from herald.contract.events import utc_stamp
from herald.store.stream import ConsumerGroup

ROOT = Path(__file__).resolve().parents[1]


def event_fields(job_id: str) -> dict[str, str]:
    """A stream entry as a worker writes it (docs/contract.md#outcome-events)."""
    data = {
        "job_id": job_id,
        "workflow": None,
        "contact_id": "c-1",
        "channel_id": "tg",
        "channel_type": "telegram",
        "outcome": "sent",
        "next": "success",
        "provider_message_ids": ["4242:1"],
        "error": None,
        "attempts": 1,
        "enqueued_at": utc_stamp(),
        "finished_at": utc_stamp(),
    }
    return {"event": "message.sent", "job_id": job_id, "data": json.dumps(data)}


@pytest.fixture
def stream(rclient: redis.Redis[Any]) -> Any:
    name = f"herald:events:group-{uuid.uuid4().hex[:8]}"
    yield name
    rclient.delete(name)


def follower(redis_url: str, stream: str, group: str, name: str, claim_idle: float) -> Any:
    env = {
        **os.environ,
        "HERALD_BROKER_URL": redis_url,
        "HERALD_REDIS_URL": redis_url,
        "HERALD_EVENTS_STREAM": stream,
    }
    command = ["events", "--follow", "--json", "--group", group, "--consumer", name]
    return subprocess.Popen(
        [sys.executable, "-m", "herald.cli", *command, "--claim-idle", str(claim_idle)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def job_ids(process: Any) -> list[str]:
    """Stop a follower (SIGINT); the job_ids it printed, in order."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 130 and "Traceback" not in err, err
    return [json.loads(line)["job_id"] for line in out.splitlines()]


def wait_until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_group_creates_its_stream_and_hands_each_event_to_one_consumer(
    rclient: redis.Redis[Any], stream: str
) -> None:
    a = ConsumerGroup(rclient, stream, "next-step", "a")
    b = ConsumerGroup(rclient, stream, "next-step", "b")
    assert a.create() is True and b.create() is False  # MKSTREAM; BUSYGROUP is no error
    for n in range(6):
        rclient.xadd(stream, event_fields(f"j{n}"))

    first = a.read(count=4, block_ms=100)
    second = b.read(count=4, block_ms=100)

    assert [e.job_id for _, e in first] == ["j0", "j1", "j2", "j3"]
    assert [e.job_id for _, e in second] == ["j4", "j5"]
    assert a.ack(entry_id for entry_id, _ in first) == 4
    assert rclient.xpending(stream, "next-step")["pending"] == 2  # b has not acked yet
    # Read again after a restart, b gets its own unacked events first.
    again = ConsumerGroup(rclient, stream, "next-step", "b").read(block_ms=100)
    assert [e.job_id for _, e in again] == ["j4", "j5"]


def test_a_killed_consumers_events_are_taken_over_by_the_other(
    rclient: redis.Redis[Any], redis_url: str, stream: str
) -> None:
    group = "billing"
    # Consumer a reads three events and is killed (SIGKILL) before it acks them.
    reader = textwrap.dedent(
        f"""
        import redis, sys, time
        from herald.store.stream import ConsumerGroup
        c = ConsumerGroup(redis.Redis.from_url({redis_url!r}), {stream!r}, {group!r}, "a")
        c.create()
        got = []
        while len(got) < 3:
            got += c.read(count=3, block_ms=200)
        print(" ".join(e.job_id for _, e in got), flush=True)
        time.sleep(600)
        """
    )
    a = subprocess.Popen(
        [sys.executable, "-c", reader], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: _has_group(rclient, stream, group))
        for n in range(3):
            rclient.xadd(stream, event_fields(f"a{n}"))
        assert a.stdout is not None
        assert a.stdout.readline().split() == ["a0", "a1", "a2"]
    finally:
        a.kill()
        a.wait()
    assert rclient.xpending(stream, group)["consumers"] == [{"name": "a", "pending": 3}]

    # Consumer b, `herald events --group`, gets the new events, and a's once idle 1 s.
    b = follower(redis_url, stream, group, "b", claim_idle=1.0)
    for n in range(3):
        rclient.xadd(stream, event_fields(f"b{n}"))
    wait_until(lambda: _delivered(rclient, stream, group) == 6)
    wait_until(lambda: rclient.xpending(stream, group)["pending"] == 0, timeout=20)
    printed = job_ids(b)

    assert sorted(printed) == ["a0", "a1", "a2", "b0", "b1", "b2"]  # each once, all acked


def test_two_followers_of_a_group_split_the_events(
    rclient: redis.Redis[Any], redis_url: str, stream: str
) -> None:
    ConsumerGroup(rclient, stream, "crm", "setup").create()
    one = follower(redis_url, stream, "crm", "one", claim_idle=60)
    two = follower(redis_url, stream, "crm", "two", claim_idle=60)
    wait_until(lambda: _consumers(rclient, stream, "crm") >= {"one", "two"})
    sent = [f"s{n}" for n in range(40)]
    for job_id in sent:
        rclient.xadd(stream, event_fields(job_id))
        time.sleep(0.005)  # spread out, so both followers are handed some
    wait_until(lambda: _delivered(rclient, stream, "crm") == 40)
    wait_until(lambda: rclient.xpending(stream, "crm")["pending"] == 0)

    first, second = job_ids(one), job_ids(two)

    assert sorted(first + second) == sorted(sent)  # each event printed once, by one of them
    assert first and second


def _has_group(client: redis.Redis[Any], stream: str, group: str) -> bool:
    return client.exists(stream) == 1 and any(
        g["name"] == group for g in client.xinfo_groups(stream)
    )


def _consumers(client: redis.Redis[Any], stream: str, group: str) -> set[str]:
    if not _has_group(client, stream, group):
        return set()
    return {c["name"] for c in client.xinfo_consumers(stream, group)}


def _delivered(client: redis.Redis[Any], stream: str, group: str) -> int:
    [info] = [g for g in client.xinfo_groups(stream) if g["name"] == group]
    last = info["last-delivered-id"]
    return len(client.xrange(stream, "-", last))
