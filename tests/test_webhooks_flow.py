"""What webhooks change, through the real server, Redis and the send core: a reply moves
``last_interacted`` and reopens a WhatsApp window; statuses of sent jobs land on the status
stream with their job_id, in order and out of order, never backwards; the outcome stream
keeps one event per job."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from herald.contract.events import utc_stamp
from herald.contract.job import parse_job
from herald.core.outcomes import JobRef
from herald.tasks.context import WorkerContext
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.callbacks import Target, Webhook, reply_call, status_call
from tests.conftest import Core, Outcomes, make_job
from tests.webhook_support import WebhookServer


def phone() -> str:
    return "3519" + "".join(random.choices("0123456789", k=8))


def number() -> int:
    return random.randint(1, 10**9)


def call_of(built: Webhook | None) -> Webhook:
    assert built is not None
    return built


def test_a_reply_moves_the_last_interacted_channel(
    core: Core, webhooks: WebhookServer, sandbox: Sandbox
) -> None:
    # Given a contact on Telegram and WhatsApp (written as people write numbers), with no
    # interaction known: a last_interacted job goes to the first listed channel
    wa = phone()
    channels = [
        {"channel_id": "tg", "identifier": str(random.randint(10**6, 10**7))},
        {"channel_id": "wa", "identifier": f"+{wa[:3]} {wa[3:6]} {wa[6:]}"},
    ]
    first = make_job(channels)
    assert core.send(first).data.channel_id == "tg"

    # When the contact replies on WhatsApp
    reply = call_of(reply_call("whatsapp", wa, "on WhatsApp now", number=number()))
    assert webhooks.post("wa", reply).status_code == 200

    # Then the inbound entry knows the contact, and the next job goes to WhatsApp
    [entry] = [e for e in webhooks.inbound() if e["data"]["identifier"] == wa]
    assert entry["data"]["contact_id"] == first["contact"]["id"]
    second = make_job(channels, contact=first["contact"])
    event = core.send(second)
    assert event.data.channel_id == "wa"
    assert sandbox.requests[-1].json()["to"] == wa


def test_a_reply_reopens_a_closed_whatsapp_window(core: Core, webhooks: WebhookServer) -> None:
    # Given a contact who last wrote two days ago: a free-form text is refused
    wa = phone()
    long_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    channels = [{"channel_id": "wa", "identifier": wa, "last_interaction_at": long_ago}]
    first = make_job(channels, channel="wa")
    closed = core.send(first)
    assert closed.data.error is not None and closed.data.error.code == "window_closed"

    # When they write again
    reply = call_of(reply_call("whatsapp", wa, "hi again", number=number()))
    assert webhooks.post("wa", reply).status_code == 200

    # Then the window is open: the same text goes out
    event = core.send(make_job(channels, channel="wa", contact=first["contact"]))
    assert (event.event, event.data.error) == ("message.sent", None)


def test_an_older_reply_never_overwrites_a_newer_one(
    core: Core, webhooks: WebhookServer, rclient: Any
) -> None:
    wa = phone()
    job = make_job([{"channel_id": "wa", "identifier": wa}])
    core.send(job)
    now = time.time()
    for at in (now, now - 3600):  # the older one arrives last
        call = call_of(reply_call("whatsapp", wa, "x", at=at, number=number()))
        assert webhooks.post("wa", call).status_code == 200
    recorded = rclient.hget(f"herald:contact:{job['contact']['id']}:interactions", "wa")
    assert '"at_ms":' + str(int(now) * 1000) in recorded


# -- statuses --------------------------------------------------------------------------


def identifier(channel_id: str) -> str:
    token = uuid.uuid4().hex[:12]
    return {
        "wa": phone(),
        "fb": f"psid-{token}",
        "ig": f"igsid-{token}",
        "sms": f"+1415{random.randint(10**6, 10**7 - 1)}",
        "viber": f"{uuid.uuid4().hex[:22]}==",
        "sg": f"ana-{token}@example.com",
        "hook": f"ana-{token}@crm",
    }[channel_id]


PROVIDERS = {
    "wa": "whatsapp",
    "fb": "messenger",
    "ig": "instagram",
    "sms": "twilio_sms",
    "viber": "viber",
    "sg": "sendgrid",
    "hook": "custom",
}


def sent_job(core: Core, channel_id: str) -> tuple[dict[str, Any], str, str]:
    """A job sent on ``channel_id``: the job, its recipient and its provider message id."""
    to = identifier(channel_id)
    job = make_job([{"channel_id": channel_id, "identifier": to}])
    event = core.send(job)
    assert event.event == "message.sent", event.data.error
    [message_id] = event.data.provider_message_ids
    return job, to, message_id


def report(
    webhooks: WebhookServer, channel_id: str, message_id: str, to: str, status: str, **kw: Any
) -> None:
    provider = PROVIDERS[channel_id]
    if provider == "sendgrid":
        message_id = message_id.split(".", 1)[0]
    call = call_of(status_call(provider, message_id, to, status, **kw))
    assert webhooks.post(channel_id, call).status_code == 200


@pytest.mark.parametrize("channel_id", ["wa", "fb", "sms", "viber", "sg", "hook"])
def test_statuses_of_a_sent_job_carry_its_job_id(
    core: Core, webhooks: WebhookServer, outcomes: Outcomes, channel_id: str
) -> None:
    job, to, message_id = sent_job(core, channel_id)

    report(webhooks, channel_id, message_id, to, "delivered")
    report(webhooks, channel_id, message_id, to, "read")

    found = webhooks.wait_statuses(job["job_id"], 2)
    assert [e["event"] for e in found] == ["message.delivered", "message.read"]
    for entry in found:
        data = entry["data"]
        assert list(data) == [
            "job_id",
            "channel_id",
            "channel_type",
            "provider_message_id",
            "status_at",
            "error",
        ]
        assert (data["job_id"], data["channel_id"]) == (job["job_id"], channel_id)
        assert data["channel_type"] == PROVIDERS[channel_id]
        assert data["error"] is None and data["status_at"].endswith("Z")
    # herald:events still has exactly the one outcome
    assert len(outcomes.for_job(job["job_id"])) == 1


def test_instagram_reports_reads_only(core: Core, webhooks: WebhookServer) -> None:
    job, to, message_id = sent_job(core, "ig")
    assert status_call("instagram", message_id, to, "delivered") is None
    report(webhooks, "ig", message_id, to, "read")
    [entry] = webhooks.wait_statuses(job["job_id"], 1)
    assert entry["event"] == "message.read"


def test_a_read_before_delivered_is_never_followed_by_delivered(
    core: Core, webhooks: WebhookServer
) -> None:
    job, to, message_id = sent_job(core, "wa")

    report(webhooks, "wa", message_id, to, "read")
    report(webhooks, "wa", message_id, to, "delivered")
    report(webhooks, "wa", message_id, to, "read")  # Meta's retry

    time.sleep(0.2)
    assert [e["event"] for e in webhooks.statuses(job["job_id"])] == ["message.read"]


@pytest.mark.parametrize(
    ("channel_id", "code", "expected", "provider_code"),
    [
        ("wa", 131026, "recipient_unavailable", "131026"),
        ("wa", 131047, "window_closed", "131047"),
        ("sms", 30003, "recipient_unavailable", "30003"),
        ("sms", 21610, "recipient_unavailable", "21610"),
        ("viber", None, "recipient_unavailable", None),
        ("sg", None, "recipient_unavailable", "5.1.1"),
        ("hook", None, "recipient_unavailable", "unreachable"),
    ],
)
def test_a_late_failure_is_undelivered_with_the_mapped_code(
    core: Core,
    webhooks: WebhookServer,
    channel_id: str,
    code: int | None,
    expected: str,
    provider_code: str | None,
) -> None:
    job, to, message_id = sent_job(core, channel_id)

    report(webhooks, channel_id, message_id, to, "failed", code=code)

    [entry] = webhooks.wait_statuses(job["job_id"], 1)
    assert entry["event"] == "message.undelivered"
    error = entry["data"]["error"]
    assert (error["code"], error["provider_code"]) == (expected, provider_code)
    assert error["retryable"] is False and error["message"]


def test_a_messenger_watermark_marks_every_earlier_message(
    core: Core, webhooks: WebhookServer
) -> None:
    psid = identifier("fb")
    jobs = []
    for _ in range(2):
        job = make_job([{"channel_id": "fb", "identifier": psid}])
        core.send(job)
        jobs.append(job)

    # A read receipt carries only a watermark (no mids): everything sent before it is read
    read = call_of(status_call("messenger", "unused", psid, "read", at=time.time() + 1))
    assert webhooks.post("fb", read).status_code == 200

    for job in jobs:
        [entry] = webhooks.wait_statuses(job["job_id"], 1)
        assert entry["event"] == "message.read"


def test_a_status_before_the_send_is_recorded_waits_for_it(
    context: WorkerContext, webhooks: WebhookServer, outcomes: Outcomes
) -> None:
    # Given a provider's delivered that beats the worker's record of the send
    wamid = f"wamid.early-{uuid.uuid4().hex}"
    to = phone()
    report(webhooks, "wa", wamid, to, "delivered")
    assert webhooks.statuses() and all(
        e["data"]["provider_message_id"] != wamid for e in webhooks.statuses()
    )

    # When the job's outcome is recorded with that message id
    job = make_job([{"channel_id": "wa", "identifier": to}])
    ref = JobRef.of_job(
        parse_job(job), job["job_id"], enqueued_at=utc_stamp(), queue=context.settings.queue
    )
    context.pipeline.outcomes.record(
        ref, token="t", channel=("wa", "whatsapp"), parts={0: [wamid]}, recipient=to
    )

    # Then the status is emitted with the job_id, once
    [entry] = webhooks.wait_statuses(job["job_id"], 1)
    assert (entry["event"], entry["data"]["provider_message_id"]) == ("message.delivered", wamid)
    assert len(outcomes.for_job(job["job_id"])) == 1


def test_a_provider_id_sent_again_by_another_job_starts_afresh(
    context: WorkerContext, webhooks: WebhookServer
) -> None:
    # A sandbox restarted on the same Redis answers ids it answered before; the record of
    # the earlier job's message must not hold the later job's statuses back
    wamid, to = f"wamid.reused-{uuid.uuid4().hex}", phone()
    jobs = [make_job([{"channel_id": "wa", "identifier": to}]) for _ in range(2)]
    for job in jobs:
        ref = JobRef.of_job(
            parse_job(job), job["job_id"], enqueued_at=utc_stamp(), queue=context.settings.queue
        )
        context.pipeline.outcomes.record(
            ref, token="t", channel=("wa", "whatsapp"), parts={0: [wamid]}, recipient=to
        )
        report(webhooks, "wa", wamid, to, "read")
        [entry] = webhooks.wait_statuses(job["job_id"], 1)
        assert entry["event"] == "message.read"


def test_the_sandbox_calls_back_after_a_send(
    core: Core, webhooks: WebhookServer, sandbox: Sandbox
) -> None:
    # Given the sandbox's WhatsApp reporting to Herald's webhook, as Meta would
    sandbox.callbacks.on("whatsapp", Target(webhooks.url("wa"), reply="thanks!", delay_s=0.05))
    try:
        job, to, _ = sent_job(core, "wa")
        found = webhooks.wait_statuses(job["job_id"], 2)
        deadline = time.monotonic() + 10
        while not (replies := [e for e in webhooks.inbound() if e["data"]["identifier"] == to]):
            assert time.monotonic() < deadline, "no reply came"
            time.sleep(0.05)
    finally:
        sandbox.callbacks.off()
    assert [e["event"] for e in found] == ["message.delivered", "message.read"]
    assert replies[0]["data"]["contact_id"] == job["contact"]["id"]


def test_twilio_sends_ask_for_status_callbacks_when_a_public_url_is_set(
    settings: Any, celery_app: Any, webhooks: WebhookServer, sandbox: Sandbox, outcomes: Outcomes
) -> None:
    # Given workers told where the webhooks are reached
    public = settings.model_copy(update={"webhooks_public_url": webhooks.base})
    context = WorkerContext.build(public, celery_app)
    sandbox.callbacks.on("twilio_sms", Target(webhooks.url("sms"), delay_s=0.05))
    try:
        to = identifier("sms")
        job = make_job([{"channel_id": "sms", "identifier": to}])
        step = Core(context, outcomes).send(job)
        found = webhooks.wait_statuses(job["job_id"], 2)
    finally:
        sandbox.callbacks.off()
        context.close()
    forms = [parse_qs(r.body.decode()) for r in sandbox.requests if r.provider == "twilio_sms"]
    [form] = [f for f in forms if f["To"] == [to]]
    assert form["StatusCallback"] == [webhooks.url("sms")]
    assert step.event == "message.sent"
    assert [e["event"] for e in found] == ["message.delivered", "message.read"]
