"""The file library (docs/content.md#the-file-library): the CLI, jobs that send library
files on every channel type, the signed links, and one upload per file and channel."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery
from typer.testing import CliRunner

from herald.cli.commands import cli
from herald.config import Settings
from herald.contract.errors import FileRefused
from herald.contract.events import OutcomeEvent
from herald.contract.names import SEND_TASK
from herald.files import signing
from herald.files.library import Library, library_from_settings
from herald.files.store import FileInfo, RedisFileStore
from herald.testing.processes import WorkerProcess
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, make_job, sandbox_requests
from tests.smtp_server import SmtpServer

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"


def unique(head: bytes, size: int = 2048) -> bytes:
    """Bytes that start as ``head`` says and that no other test's file shares."""
    tail = uuid.uuid4().bytes * (size // 16 + 1)
    return (head + tail)[: max(size, len(head) + 16)]


@pytest.fixture(scope="module")
def library(settings: Settings) -> Iterator[Library]:
    made = library_from_settings(settings, max_connections=4)
    yield made
    made.close()


def add(library: Library, data: bytes, name: str, content_type: str) -> FileInfo:
    return library.store.add(data, name=name, content_type=content_type)


def media_job(channel: str, recipient: str, file_id: str, **extra: Any) -> dict[str, Any]:
    job = make_job([{"channel_id": channel, "identifier": recipient}])
    job["message"] = {"type": "media", "attachments": [{"file_id": file_id, **extra}]}
    return job


# -- herald files ------------------------------------------------------------------------


@pytest.mark.usefixtures("herald_env")
def test_files_add_list_show_delete_through_the_cli(tmp_path: Path) -> None:
    # Given a PDF on disk (named .bin: the type comes from the bytes, not the name),
    data = unique(PDF)
    path = tmp_path / "brochure.bin"
    path.write_bytes(data)
    # when it is added under a name,
    added = runner.invoke(cli, ["files", "add", str(path), "--name", "Brochure.pdf"])
    assert added.exit_code == 0, added.output
    file_id = added.stdout.strip()
    assert file_id.startswith("f_")
    # it is listed, and shown with its detected type, size and checksum;
    listed = runner.invoke(cli, ["files", "list"])
    rows = [row.split("  ") for row in listed.stdout.splitlines()]
    assert [file_id, "Brochure.pdf", "application/pdf", str(len(data))] in [r[:4] for r in rows]
    shown = json.loads(runner.invoke(cli, ["files", "show", file_id]).stdout)
    assert shown["content_type"] == "application/pdf"
    assert shown["size"] == len(data)
    assert shown["sha256"] == hashlib.sha256(data).hexdigest()
    # adding it again is a new file (files are immutable: a version is a new id);
    again = runner.invoke(cli, ["files", "add", str(path)]).stdout.strip()
    assert again != file_id
    # and once deleted it is gone.
    assert runner.invoke(cli, ["files", "delete", file_id]).exit_code == 0
    assert runner.invoke(cli, ["files", "show", file_id]).exit_code == 1
    assert file_id not in runner.invoke(cli, ["files", "list"]).stdout
    assert runner.invoke(cli, ["files", "delete", file_id]).exit_code == 1
    assert runner.invoke(cli, ["files", "delete", again]).exit_code == 0


@pytest.mark.usefixtures("herald_env")
def test_files_add_warns_of_the_channels_a_file_is_too_large_for(tmp_path: Path) -> None:
    path = tmp_path / "poster.png"
    path.write_bytes(unique(PNG, 6_000_000))
    added = runner.invoke(cli, ["files", "add", str(path)])
    assert added.exit_code == 0, added.output
    assert "warning: whatsapp takes image attachments up to 5000000 bytes" in added.stderr
    assert "warning: viber takes image attachments up to 1000000 bytes" in added.stderr
    assert "telegram" not in added.stderr  # 10 MB photos
    runner.invoke(cli, ["files", "delete", added.stdout.strip()])


def test_the_store_refuses_files_over_the_cap_and_the_quota(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    used = int(client.get("herald:files:used") or 0)
    store = RedisFileStore(client, max_bytes=1000, quota_bytes=used + 1500, chunk_bytes=300)
    with pytest.raises(FileRefused, match="HERALD_FILES_MAX_BYTES"):
        store.add(b"x" * 1001, name="big", content_type="text/plain")
    first = store.add(b"a" * 1000, name="one", content_type="text/plain")
    with pytest.raises(FileRefused, match="HERALD_FILES_QUOTA_BYTES"):
        store.add(b"b" * 600, name="two", content_type="text/plain")
    assert store.read(first.id) == b"a" * 1000  # four chunks, read back whole
    assert store.delete(first.id)
    assert int(client.get("herald:files:used") or 0) == used  # the quota is given back
    client.close()


# -- jobs that send library files -----------------------------------------------------


def test_an_unknown_file_id_fails_the_job_before_any_provider_call(
    core: Core, sandbox: Sandbox
) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    event = core.send(media_job("tg", chat, "f_nosuchfile"))
    assert event.event == "message.failed"
    assert event.data.error is not None and event.data.error.code == "invalid_job"
    assert "f_nosuchfile" in event.data.error.message
    assert sandbox_requests(sandbox, "telegram", chat_id=chat) == []


def _signed(url: str, file_id: str) -> bool:
    return url.startswith(f"https://files.herald.test/files/{file_id}?expires=") and (
        "&signature=" in url
    )


@pytest.mark.parametrize(
    "channel", ["wa", "fb", "ig", "tg", "sms", "line", "viber", "hook", "sg", "mail"]
)
def test_each_channel_type_sends_a_library_file(
    channel: str,
    core: Core,
    sandbox: Sandbox,
    library: Library,
    smtp_server: SmtpServer,
) -> None:
    data = unique(PNG)
    info = add(library, data, "photo.png", "image/png")
    recipients = {
        "wa": str(351_900_000_000 + uuid.uuid4().int % 10**8),
        "fb": f"psid-{uuid.uuid4().hex[:8]}",
        "ig": f"igsid-{uuid.uuid4().hex[:8]}",
        "tg": str(uuid.uuid4().int % 10**9),
        "sms": f"+1555{uuid.uuid4().int % 10**7:07d}",
        "line": f"U{uuid.uuid4().hex}",
        "viber": f"v{uuid.uuid4().hex[:10]}==",
        "hook": f"h-{uuid.uuid4().hex[:8]}",
        "sg": f"ana-{uuid.uuid4().hex[:8]}@example.com",
        "mail": f"ana-{uuid.uuid4().hex[:8]}@example.com",
    }
    to = recipients[channel]
    job = media_job(channel, to, info.id, caption="Our new look")
    if channel in ("sg", "mail"):
        job["channel_responses"] = {
            channel: {
                "type": "email",
                "subject": "Photo",
                "html": "<p>Attached</p>",
                "attachments": [{"file_id": info.id}],
            }
        }
    event = core.send(job)
    assert event.event == "message.sent", event.data.error
    if channel == "wa":
        [sent] = sandbox_requests(sandbox, "whatsapp", to=to)
        assert sent["type"] == "image" and sent["image"]["id"].isdigit()
        assert "link" not in sent["image"]
    elif channel in ("fb", "ig"):
        provider = "messenger" if channel == "fb" else "instagram"
        [sent, caption] = sandbox_requests(sandbox, provider, recipient__id=to)
        assert sent["message"]["attachment"]["payload"]["attachment_id"]
        assert caption["message"] == {"text": "Our new look"}
    elif channel == "tg":
        [upload] = [r for r in sandbox.requests if r.provider == "telegram" and data in r.body]
        assert upload.headers["content-type"].startswith("multipart/form-data")
    elif channel == "sms":
        [sent] = [
            r for r in sandbox.requests if r.provider == "twilio_sms" and to.encode()[1:] in r.body
        ]
        form = httpx.QueryParams(sent.body.decode())
        assert _signed(form["MediaUrl"], info.id)
    elif channel == "line":
        [sent] = sandbox_requests(sandbox, "line", to=to)
        assert _signed(sent["messages"][0]["originalContentUrl"], info.id)
    elif channel == "viber":
        [sent, _caption] = sandbox_requests(sandbox, "viber", receiver=to)
        assert sent["type"] == "picture" and _signed(sent["media"], info.id)
    elif channel == "hook":
        [sent] = sandbox_requests(sandbox, "custom", data__recipient=to)
        [attachment] = sent["data"]["message"]["attachments"]
        assert _signed(attachment["url"], info.id) and attachment["kind"] == "image"
    elif channel == "sg":
        [sent] = [b for b in sandbox_requests(sandbox, "sendgrid") if _to(b) == to]
        [attached] = sent["attachments"]
        assert base64.b64decode(attached["content"]) == data
        assert attached["type"] == "image/png" and attached["filename"] == "photo.png"
    else:
        [got] = [m for m in smtp_server.messages if m.rcpt_tos == [to]]
        [part] = list(got.message.iter_attachments())
        assert part.get_content_type() == "image/png"
        assert part.get_content() == data


def _to(body: dict[str, Any]) -> str:
    return str(body["personalizations"][0]["to"][0]["email"])


def test_a_file_too_large_for_the_channel_is_invalid_content(
    core: Core, sandbox: Sandbox, library: Library
) -> None:
    info = add(library, unique(PNG, 1_100_000), "big.png", "image/png")
    receiver = f"v{uuid.uuid4().hex[:10]}=="
    event = core.send(media_job("viber", receiver, info.id))
    assert event.data.error is not None and event.data.error.code == "invalid_content"
    assert "viber takes image attachments up to 1000000 bytes" in event.data.error.message
    assert sandbox_requests(sandbox, "viber", receiver=receiver) == []


# -- signed links -----------------------------------------------------------------------


def test_signed_links_serve_the_file_and_refuse_anything_else(
    webhooks: Any, library: Library
) -> None:
    data = unique(PDF)
    info = add(library, data, "Menu.pdf", "application/pdf")
    link = library.url(info.id).replace("https://files.herald.test", webhooks.base)
    # A valid link serves the bytes, with the type detected when the file was added;
    got = webhooks.http.get(link)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    # a tampered signature, another file's id or an expired link are refused;
    assert (
        webhooks.http.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB")).status_code
        == 403
    )
    other = add(library, unique(PDF), "Other.pdf", "application/pdf")
    assert webhooks.http.get(link.replace(info.id, other.id)).status_code == 403
    past = int(time.time()) - 10
    sig = signing.signature(library.signing_key, info.id, past)
    expired = f"{webhooks.base}/files/{info.id}?expires={past}&signature={sig}"
    assert webhooks.http.get(expired).status_code == 403
    assert webhooks.http.get(f"{webhooks.base}/files/{info.id}").status_code == 403
    # and the library is never listed.
    for path in ("/files", "/files/"):
        assert webhooks.http.get(webhooks.base + path).status_code == 404
    library.store.delete(info.id)
    assert webhooks.http.get(link).status_code == 404


# -- one upload per file and channel, across two worker processes ------------------------


def _events_of(
    client: redis.Redis, stream: str, start: str, job_ids: list[str], timeout: float = 150
) -> list[OutcomeEvent]:
    """The one outcome event of each job, read from the stream after ``start`` (the whole
    stream of a long test run is too long to read once per job)."""
    wanted, found = set(job_ids), dict[str, list[OutcomeEvent]]()
    deadline = time.monotonic() + timeout
    while wanted - found.keys():
        assert time.monotonic() < deadline, f"{len(wanted - found.keys())} jobs have no outcome"
        for entry_id, fields in client.xrange(stream, min=f"({start}"):
            start = entry_id
            if fields["job_id"] in wanted:
                found.setdefault(fields["job_id"], []).append(OutcomeEvent.from_fields(fields))
        time.sleep(0.1)
    assert all(len(found[j]) == 1 for j in job_ids), "a job has two outcome events"
    return [found[j][0] for j in job_ids]


@pytest.mark.timeout(300)
def test_200_jobs_on_two_workers_upload_once_per_channel(
    herald_env: dict[str, str],
    settings: Settings,
    sandbox: Sandbox,
    library: Library,
    rclient: redis.Redis,
    tmp_path: Path,
) -> None:
    # Given one library photo, and two worker processes on a queue of their own,
    data = unique(PNG, 4096)
    info = add(library, data, "promo.png", "image/png")
    queue = f"files-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **herald_env, "HERALD_QUEUE": queue}
    workers = [
        WorkerProcess(env, tmp_path / f"worker-{n}.log", concurrency=8).start() for n in range(2)
    ]
    channels = {
        "wa": lambda n: str(351_910_000_000 + n),
        "fb": lambda n: f"psid-{queue}-{n}",
        "ig": lambda n: f"igsid-{queue}-{n}",
        "tg": lambda n: str(700_000_000 + uuid.uuid4().int % 10**8),
    }
    jobs = [
        media_job(channel, recipient(n), info.id)
        for n in range(50)
        for channel, recipient in channels.items()
    ]
    start = rclient.xrevrange(settings.events_stream, count=1)
    start = start[0][0] if start else "0-0"
    producer = Celery("producer", broker=herald_env["HERALD_BROKER_URL"], set_as_current=False)
    try:
        # when 200 jobs that send it (50 per channel) go to them at once,
        for job in jobs:
            producer.send_task(SEND_TASK, kwargs={"job": job}, queue=queue)
        events = _events_of(rclient, settings.events_stream, start, [j["job_id"] for j in jobs])
    finally:
        producer.close()
        for worker in workers:
            worker.terminate(timeout=30)
    # every job is sent,
    assert {e.event for e in events} == {"message.sent"}
    assert {e.data.channel_id for e in events} == set(channels)
    # and the sandbox saw exactly one upload of the file per channel.
    uploads = {
        provider: [r for r in sandbox.requests if r.provider == provider and data in r.body]
        for provider in ("whatsapp_media", "messenger_upload", "instagram_upload", "telegram")
    }
    assert {p: len(found) for p, found in uploads.items()} == {p: 1 for p in uploads}
    sent_by_id = [
        r
        for r in sandbox.requests
        if r.provider == "telegram"
        and r.headers.get("content-type") == "application/json"
        and b'"photo"' in r.body
    ]
    assert len(sent_by_id) >= 49  # the other 49 Telegram sends reuse the file_id
