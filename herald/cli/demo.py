"""``herald demo``: the whole path on one machine, with nothing running beforehand.

It starts (or joins) the embedded Redis, a sandbox provider on loopback speaking the
Telegram and webhook wire formats, and a real worker process; enqueues a handful of jobs
by task name; prints their outcome events; checks each against what it should be; and
stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from rich.console import Console

from herald.cli.tables import events_table
from herald.config import Settings, redact_url
from herald.contract.events import OutcomeEvent
from herald.contract.names import SEND_TASK
from herald.store import embedded, stream
from herald.store.connection import resolve_urls
from herald.testing.sandbox import DEFAULT_TELEGRAM_TOKEN, DEFAULT_WEBHOOK_SECRET, Sandbox


@dataclass(frozen=True)
class Case:
    """One demo job and the outcome it must have."""

    title: str
    job: Any
    event: str
    next: str
    code: str | None = None


def _channels_toml(sandbox: Sandbox) -> str:
    return (
        "[channels.tg]\n"
        'type = "telegram"\n'
        'bot_token = "${DEMO_TG_TOKEN}"\n'
        f'base_url = "{sandbox.url}"\n\n'
        "[channels.hook]\n"
        'type = "custom"\n'
        f'url = "{sandbox.url}/webhook/herald"\n'
        'secret = "${DEMO_WEBHOOK_SECRET}"\n'
    )


def _job(run: str, n: int, channels: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "job_id": f"demo-{run}:step-{n}",
        "workflow": {"workflow_id": "wf-demo", "run_id": f"demo-{run}", "step_id": f"step-{n}"},
        "contact": {
            "id": f"c-{n}",
            "fields": {"firstname": "Ana", "lastname": "Silva"},
            "channels": channels,
        },
        "variables": {"trigger": {"order_id": "A-17"}},
        "message": {
            "type": "text",
            "text": "👩🏽‍💻 Hi $contact.firstname, order $trigger.order_id is"
            " ${http.status|on its way}.",
        },
        **extra,
    }


def cases(run: str) -> list[Case]:
    """The demo's jobs: sent, failure branch on and off, no channel, invalid."""
    tg = [{"channel_id": "tg", "identifier": "4242"}]
    return [
        Case("text on Telegram", _job(run, 1, tg), "message.sent", "success"),
        Case(
            "webhook channel",
            _job(run, 2, [{"channel_id": "hook", "identifier": "ana@crm"}], channel="hook"),
            "message.sent",
            "success",
        ),
        Case(
            "blocked, failure branch on",
            _job(run, 3, [{"channel_id": "tg", "identifier": "blocked"}], failure_branch=True),
            "message.failed",
            "failure",
            "recipient_unavailable",
        ),
        Case(
            "blocked, failure branch off",
            _job(run, 4, [{"channel_id": "tg", "identifier": "blocked"}]),
            "message.failed",
            "end",
            "recipient_unavailable",
        ),
        Case(
            "no usable channel",
            _job(run, 5, [{"channel_id": "whatsapp_x", "identifier": "351911111111"}]),
            "message.failed",
            "end",
            "no_channel",
        ),
        Case(
            "invalid job (unknown field)",
            _job(run, 6, tg, colour="blue"),
            "message.failed",
            "end",
            "invalid_job",
        ),
    ]


def _collect(
    client: redis.Redis, events_stream: str, start: str, ids: set[str], timeout: float
) -> dict[str, list[OutcomeEvent]]:
    """Every event for ``ids`` after ``start``, waiting until each has one (or timeout)."""
    found: dict[str, list[OutcomeEvent]] = {}
    deadline = time.monotonic() + timeout
    last = start
    while True:
        fresh = stream.read_after(client, events_stream, last, block_ms=300)
        for entry_id, event in fresh:
            last = entry_id
            if event.job_id in ids:
                found.setdefault(event.job_id, []).append(event)
        if not fresh and (ids <= found.keys() or time.monotonic() > deadline):
            return found


def run_demo(console: Console, base: Settings, *, timeout: float = 90.0) -> int:
    """Run the demo; return the exit code (0 when every outcome is as expected)."""
    server = None if base.broker_url else embedded.ensure(base.data_dir)
    urls = resolve_urls(base)
    console.print(f"[bold]Herald demo[/bold] · Redis {redact_url(urls.redis)}", highlight=False)
    try:
        with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="herald-demo-") as tmp:
            channels = Path(tmp) / "channels.toml"
            channels.write_text(_channels_toml(sandbox))
            env = {
                **os.environ,
                "HERALD_CHANNELS_FILE": str(channels),
                "HERALD_DATA_DIR": str(base.data_dir),
                "DEMO_TG_TOKEN": DEFAULT_TELEGRAM_TOKEN,
                "DEMO_WEBHOOK_SECRET": DEFAULT_WEBHOOK_SECRET,
            }
            console.print(f"sandbox provider on {sandbox.url}; starting a worker", highlight=False)
            command = [sys.executable, "-m", "herald.cli", "worker", "--loglevel=ERROR"]
            worker = subprocess.Popen(
                [*command, "--concurrency=8"], env=env, stdout=subprocess.DEVNULL
            )
            try:
                code = _drive(console, urls.broker, urls.redis, base, timeout)
                return code or _sent_once(console, sandbox)
            finally:
                worker.terminate()  # warm shutdown: in-flight sends finish
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    finally:
        if server is not None and server.started_here:
            server.stop()


def _drive(console: Console, broker: str, redis_url: str, base: Settings, timeout: float) -> int:
    client = redis.Redis.from_url(redis_url)
    start = stream.last_id(client, base.events_stream)
    # A producer with no Herald code: a plain Celery client sending by task name.
    producer = Celery("producer", broker=broker, set_as_current=False)
    demo = cases(uuid.uuid4().hex[:8])
    try:
        for case in demo:
            producer.send_task(SEND_TASK, kwargs={"job": case.job}, queue=base.queue)
        # The same job_id enqueued twice: it must be sent once and have one event.
        producer.send_task(SEND_TASK, kwargs={"job": demo[0].job}, queue=base.queue)
        console.print(f"enqueued {len(demo) + 1} jobs (one of them twice); waiting for outcomes")
        ids = {case.job["job_id"] for case in demo}
        found = _collect(client, base.events_stream, start, ids, timeout)
    finally:
        producer.close()
        client.close()
    shown = [
        events[0] for case in demo for events in [found.get(case.job["job_id"], [])][:1] if events
    ]
    console.print(events_table(shown))
    return _verdict(console, demo, found)


def _sent_once(console: Console, sandbox: Sandbox) -> int:
    """The job enqueued twice reached the provider once."""
    hits = [
        r for r in sandbox.requests if r.provider == "telegram" and r.json()["chat_id"] == "4242"
    ]
    if len(hits) != 1:
        console.print(f"[red]✗ the job enqueued twice reached the provider {len(hits)} times[/red]")
        return 1
    return 0


def _verdict(console: Console, demo: list[Case], found: dict[str, list[OutcomeEvent]]) -> int:
    problems = []
    for case in demo:
        events = found.get(case.job["job_id"], [])
        if len(events) != 1:
            problems.append(f"{case.title}: {len(events)} outcome events, expected 1")
            continue
        event = events[0]
        code = event.data.error.code if event.data.error else None
        if (event.event, event.data.next, code) != (case.event, case.next, case.code):
            problems.append(f"{case.title}: got {event.event}/{event.data.next}/{code}")
    for problem in problems:
        console.print(f"[red]✗ {problem}[/red]")
    if problems:
        return 1
    console.print(
        f"[green]✓ {len(demo)} jobs, {len(demo)} outcome events as expected;"
        " the job enqueued twice was sent once[/green]"
    )
    return 0
