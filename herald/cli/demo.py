"""``herald demo``: the whole path on one machine, with nothing running beforehand.

It starts (or joins) the embedded Redis, a sandbox provider on loopback speaking the
Telegram, WhatsApp and webhook wire formats, a real worker process and ``herald
webhooks``; enqueues a handful of jobs by task name; prints their outcome events; checks
each against what it should be; then the way back (docs/webhooks.md): the sandbox's
WhatsApp reports a message delivered and read and the contact replies, and the next
``last_interacted`` job follows the reply to WhatsApp. It stops what it started.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import redis
from celery import Celery
from rich.console import Console
from rich.table import Table
from rich.text import Text

from herald.cli.tables import events_table
from herald.config import Settings, redact_url
from herald.contract.events import OutcomeEvent
from herald.contract.names import SEND_TASK
from herald.files.detect import content_type
from herald.files.store import RedisFileStore
from herald.store import embedded, stream
from herald.store.connection import Urls, resolve_urls
from herald.store.decode import text
from herald.testing.sandbox import DEFAULT_TELEGRAM_TOKEN, DEFAULT_WEBHOOK_SECRET, Sandbox
from herald.testing.sandbox.callbacks import META_APP_SECRET, META_VERIFY_TOKEN, Target
from herald.testing.sandbox.credentials import DEFAULT_WHATSAPP_TOKEN


@dataclass(frozen=True)
class Case:
    """One demo job and the outcome it must have."""

    title: str
    job: Any
    event: str
    next: str
    code: str | None = None


#: The demo's library file: a 1x1 transparent PNG.
DEMO_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _channels_toml(sandbox: Sandbox) -> str:
    return (
        "[channels.wa]\n"
        'type = "whatsapp"\n'
        'phone_number_id = "106540352242922"\n'
        'access_token = "${DEMO_WA_TOKEN}"\n'
        'app_secret = "${DEMO_META_APP_SECRET}"\n'
        'verify_token = "${DEMO_META_VERIFY_TOKEN}"\n'
        f'base_url = "{sandbox.url}"\n\n'
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


def cases(run: str, file_id: str) -> list[Case]:
    """The demo's jobs: sent (a text, a webhook, a library file), failure branch on and
    off, no channel, invalid."""
    tg = [{"channel_id": "tg", "identifier": "4242"}]
    shelf = [{"channel_id": "tg", "identifier": "4243"}]
    media = {"type": "media", "attachments": [{"file_id": file_id, "caption": "Our menu"}]}
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
        Case(
            "library file on Telegram",
            _job(run, 7, shelf, message=media),
            "message.sent",
            "success",
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
            bind = f"127.0.0.1:{_free_port()}"
            env = {
                **os.environ,
                "HERALD_CHANNELS_FILE": str(channels),
                "HERALD_DATA_DIR": str(base.data_dir),
                "HERALD_WEBHOOKS_BIND": bind,
                "DEMO_TG_TOKEN": DEFAULT_TELEGRAM_TOKEN,
                "DEMO_WEBHOOK_SECRET": DEFAULT_WEBHOOK_SECRET,
                "DEMO_WA_TOKEN": DEFAULT_WHATSAPP_TOKEN,
                "DEMO_META_APP_SECRET": META_APP_SECRET,
                "DEMO_META_VERIFY_TOKEN": META_VERIFY_TOKEN,
            }
            console.print(
                f"sandbox provider on {sandbox.url}; starting a worker and herald webhooks"
                f" on {bind}",
                highlight=False,
            )
            command = [sys.executable, "-m", "herald.cli"]
            worker = subprocess.Popen(
                [*command, "worker", "--loglevel=ERROR", "--concurrency=8"],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            hooks = subprocess.Popen(
                [*command, "webhooks", "--loglevel=warning"], env=env, stdout=subprocess.DEVNULL
            )
            try:
                code = _drive(console, urls.broker, urls.redis, base, timeout)
                code = code or _sent_once(console, sandbox)
                return code or two_way(console, sandbox, urls, base, bind, timeout)
            finally:
                for process in (worker, hooks):
                    process.terminate()  # warm shutdown: in-flight sends finish
                for process in (worker, hooks):
                    try:
                        process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
    finally:
        if server is not None and server.started_here:
            server.stop()


def _drive(console: Console, broker: str, redis_url: str, base: Settings, timeout: float) -> int:
    client = redis.Redis.from_url(redis_url)
    start = stream.last_id(client, base.events_stream)
    # A producer with no Herald code: a plain Celery client sending by task name.
    producer = Celery("producer", broker=broker, set_as_current=False)
    # One file in the library (a 1x1 PNG), sent by file_id: uploaded once, then reused.
    library = RedisFileStore(
        client, max_bytes=base.files_max_bytes, quota_bytes=base.files_quota_bytes
    )
    picture = library.add(DEMO_PNG, name="menu.png", content_type=content_type(DEMO_PNG))
    demo = cases(uuid.uuid4().hex[:8], picture.id)
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
        library.delete(picture.id)
        client.close()
    shown = [
        events[0] for case in demo for events in [found.get(case.job["job_id"], [])][:1] if events
    ]
    console.print(events_table(shown))
    return _verdict(console, demo, found)


def _sent_once(console: Console, sandbox: Sandbox) -> int:
    """The job enqueued twice reached the provider once."""
    hits = [
        r
        for r in sandbox.requests
        if r.provider == "telegram"
        and r.headers.get("content-type") == "application/json"
        and r.json()["chat_id"] == "4242"
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


# -- the way back: statuses and a reply (docs/webhooks.md) ---------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_webhooks(bind: str, timeout: float) -> bool:
    """Whether ``herald webhooks`` answers (a channel that is not there: 404, unlogged)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://{bind}/webhooks/-", timeout=1)
            return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


def _entries_after(client: redis.Redis, stream: str, start: str) -> list[dict[str, Any]]:
    """The entries of ``stream`` after ``start``, as ``event`` plus the data's fields."""
    rows = cast(list[tuple[Any, dict[Any, Any]]], client.xrange(stream, min=f"({start}") or [])
    return [{"event": text(f["event"]), **json.loads(f["data"])} for _, f in rows]


def two_way(
    console: Console, sandbox: Sandbox, urls: Urls, base: Settings, bind: str, timeout: float
) -> int:
    """A WhatsApp message goes sent → delivered → read, the contact replies, and the next
    ``last_interacted`` job follows the reply from Telegram (listed first) to WhatsApp."""
    if not _wait_for_webhooks(bind, timeout=30):
        console.print("[red]✗ herald webhooks did not start[/red]")
        return 1
    client = redis.Redis.from_url(urls.redis, decode_responses=True)
    producer = Celery("producer", broker=urls.broker, set_as_current=False)
    marks = {s: stream.last_id(client, s) for s in (base.status_stream, base.inbound_stream)}
    run = uuid.uuid4().hex[:8]
    channels = [
        {"channel_id": "tg", "identifier": "4243"},
        {"channel_id": "wa", "identifier": "+351 911 111 111"},
    ]
    first = _job(run, 7, channels, channel="wa")
    first["contact"]["id"] = f"c-{run}"  # a contact with no interaction yet, on any run
    then = {**_job(run, 8, channels), "contact": first["contact"]}
    sandbox.callbacks.on(
        "whatsapp", Target(f"http://{bind}/webhooks/wa", reply="👍 Thanks, got it!", delay_s=0.3)
    )
    console.print("\n[bold]the way back[/bold]: a WhatsApp message, its statuses, a reply")
    try:
        start = stream.last_id(client, base.events_stream)
        producer.send_task(SEND_TASK, kwargs={"job": first}, queue=base.queue)
        sent = _collect(client, base.events_stream, start, {first["job_id"]}, timeout)
        back = _wait_back(client, base, marks, first["job_id"], timeout)
        start = stream.last_id(client, base.events_stream)
        producer.send_task(SEND_TASK, kwargs={"job": then}, queue=base.queue)
        after = _collect(client, base.events_stream, start, {then["job_id"]}, timeout)
    finally:
        sandbox.callbacks.off()
        producer.close()
        client.close()
    statuses, replies = back
    console.print(_way_back_table(sent.get(first["job_id"], []), statuses, replies))
    return _two_way_verdict(console, statuses, replies, after.get(then["job_id"], []), first)


def _wait_back(
    client: redis.Redis, base: Settings, marks: dict[str, str], job_id: str, timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The statuses of ``job_id`` (delivered and read) and the reply, once both came."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = [
            s
            for s in _entries_after(client, base.status_stream, marks[base.status_stream])
            if s["job_id"] == job_id
        ]
        replies = [
            r
            for r in _entries_after(client, base.inbound_stream, marks[base.inbound_stream])
            if r["channel_id"] == "wa" and r["identifier"] == "351911111111"
        ]
        if (len(statuses) >= 2 and replies) or time.monotonic() > deadline:
            return statuses, replies
        time.sleep(0.1)


def _way_back_table(
    sent: list[OutcomeEvent], statuses: list[dict[str, Any]], replies: list[dict[str, Any]]
) -> Table:
    table = Table("stream", "event", "job_id / contact", "channel", "at", "text")
    for event in sent[:1]:
        table.add_row(
            "herald:events",
            Text(event.event, style="green"),
            Text(event.job_id),
            event.data.channel_id or "-",
            event.data.finished_at,
            "",
        )
    for status in statuses:
        table.add_row(
            "herald:statuses",
            Text(status["event"], style="cyan"),
            Text(status["job_id"]),
            status["channel_id"],
            status["status_at"],
            "",
        )
    for reply in replies[:1]:
        table.add_row(
            "herald:inbound",
            Text(reply["event"], style="magenta"),
            Text(str(reply["contact_id"])),
            reply["channel_id"],
            reply["received_at"],
            Text(reply["text"] or ""),
        )
    return table


def _two_way_verdict(
    console: Console,
    statuses: list[dict[str, Any]],
    replies: list[dict[str, Any]],
    after: list[OutcomeEvent],
    first: dict[str, Any],
) -> int:
    problems = []
    if [s["event"] for s in statuses] != ["message.delivered", "message.read"]:
        problems.append(f"statuses: {[s['event'] for s in statuses]}, expected delivered, read")
    if not replies or replies[0]["contact_id"] != first["contact"]["id"]:
        problems.append("the reply did not reach herald:inbound with the contact's id")
    if len(after) != 1 or after[0].data.channel_id != "wa":
        got = after[0].data.channel_id if after else "no event"
        problems.append(f"the next last_interacted job went to {got}, expected wa")
    for problem in problems:
        console.print(f"[red]✗ {problem}[/red]")
    if problems:
        return 1
    console.print(
        "[green]✓ sent → delivered → read; the reply moved the contact's last interacted"
        " channel from Telegram to WhatsApp[/green]"
    )
    return 0
