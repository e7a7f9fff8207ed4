"""Real parts for the tests: a Redis server, a sandbox provider, a Celery worker.

Redis is ``HERALD_TEST_REDIS_URL`` when set, else an embedded server started in a temp
folder. Every run uses its own queue and outcome stream, so runs sharing a Redis server
do not take each other's jobs.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from herald.config import Settings
from herald.contract.events import OutcomeEvent
from herald.core.pipeline import Finished, Step
from herald.store import embedded
from herald.tasks.context import WorkerContext
from herald.testing.sandbox import Sandbox

# The local SMTP server fixture (smtp_server) for the email channel.
pytest_plugins = ["tests.smtp_server"]

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server's URL."""
    given = os.environ.get("HERALD_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = embedded.ensure(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The local provider server (Telegram and webhook wire formats)."""
    with Sandbox() as box:
        yield box


#: What the Meta channels' webhooks are verified with (the sandbox signs with these).
META_WEBHOOK = (
    '\napp_secret = "${SANDBOX_META_APP_SECRET}"\nverify_token = "${SANDBOX_META_VERIFY_TOKEN}"'
)

#: The test channels, one per channel type: id -> TOML body. ``{url}`` is the sandbox,
#: ``{smtp_port}`` the local SMTP server; ``${SANDBOX_<PROVIDER>}`` is the credential the
#: sandbox accepts for that provider (see ``secret_env``). Only types Herald has an adapter
#: for are written, so a type's channel appears as soon as its adapter is registered.
TEST_CHANNELS: dict[str, tuple[str, str]] = {
    "tg": (
        "telegram",
        'bot_token = "${SANDBOX_TELEGRAM}"\nbase_url = "{url}"\n'
        'webhook_secret = "${SANDBOX_TELEGRAM_WEBHOOK_SECRET}"',
    ),
    "hook": ("custom", 'url = "{url}/webhook/t"\nsecret = "${SANDBOX_CUSTOM}"'),
    "wa": (
        "whatsapp",
        'phone_number_id = "106540352242922"\naccess_token = "${SANDBOX_WHATSAPP}"\n'
        'base_url = "{url}"' + META_WEBHOOK,
    ),
    "fb": (
        "messenger",
        'page_id = "1100223344"\npage_access_token = "${SANDBOX_MESSENGER}"\nbase_url = "{url}"'
        + META_WEBHOOK,
    ),
    "ig": (
        "instagram",
        'page_id = "17841400000000001"\naccess_token = "${SANDBOX_INSTAGRAM}"\nbase_url = "{url}"'
        + META_WEBHOOK,
    ),
    "sms": (
        "twilio_sms",
        'account_sid = "AC00000000000000000000000000000001"\nauth_token = "${SANDBOX_TWILIO_SMS}"\n'
        'from_number = "+15005550006"\nbase_url = "{url}"',
    ),
    "line": (
        "line",
        'channel_access_token = "${SANDBOX_LINE}"\nbase_url = "{url}"\n'
        'channel_secret = "${SANDBOX_LINE_CHANNEL_SECRET}"',
    ),
    "viber": (
        "viber",
        'auth_token = "${SANDBOX_VIBER}"\nsender_name = "Herald Shop"\nbase_url = "{url}"',
    ),
    "sg": (
        "sendgrid",
        'api_key = "${SANDBOX_SENDGRID}"\nfrom_address = "shop@herald.test"\nbase_url = "{url}"\n'
        'event_public_key = "${SANDBOX_SENDGRID_EVENT_PUBLIC_KEY}"',
    ),
    "mail": (
        "email_smtp",
        'host = "127.0.0.1"\nport = {smtp_port}\nusername = "herald"\n'
        'password = "${SANDBOX_EMAIL_SMTP}"\nfrom_address = "shop@herald.test"\nsecurity = "none"',
    ),
}


def secret_env() -> dict[str, str]:
    """``SANDBOX_<PROVIDER>`` variables holding the credentials the sandbox accepts."""
    from herald.testing.sandbox import DEFAULT_SECRETS, callbacks

    env = {f"SANDBOX_{name.upper()}": value for name, value in DEFAULT_SECRETS.items()}
    env.setdefault("SANDBOX_EMAIL_SMTP", "smtp-secret")
    env["SANDBOX_META_APP_SECRET"] = callbacks.META_APP_SECRET
    env["SANDBOX_META_VERIFY_TOKEN"] = callbacks.META_VERIFY_TOKEN
    env["SANDBOX_TELEGRAM_WEBHOOK_SECRET"] = callbacks.TELEGRAM_WEBHOOK_SECRET
    env["SANDBOX_LINE_CHANNEL_SECRET"] = callbacks.LINE_CHANNEL_SECRET
    env["SANDBOX_SENDGRID_EVENT_PUBLIC_KEY"] = callbacks.SENDGRID_EVENT_PUBLIC_KEY
    return env


def channels_toml(sandbox: Sandbox, smtp_port: int = 0) -> str:
    """The test channels file, for every channel type that has an adapter."""
    from herald.adapters import ADAPTERS
    from herald.config import ChannelType

    tables = []
    for channel_id, (kind, body) in TEST_CHANNELS.items():
        if ChannelType(kind) in ADAPTERS:
            body = body.replace("{url}", sandbox.url).replace("{smtp_port}", str(smtp_port))
            tables.append(f'[channels.{channel_id}]\ntype = "{kind}"\n{body}\n')
    return "\n".join(tables)


def smtp_port(request: pytest.FixtureRequest) -> int:
    """The local SMTP server's port, when Herald has an SMTP adapter (else 0)."""
    from herald.adapters import ADAPTERS
    from herald.config import ChannelType

    if ChannelType.EMAIL_SMTP not in ADAPTERS:
        return 0
    server = request.getfixturevalue("smtp_server")
    return int(server.port)


@pytest.fixture(scope="session")
def herald_env(
    redis_url: str,
    sandbox: Sandbox,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, str]]:
    """HERALD_* variables for this run, set in the process (and passed to subprocesses)."""
    folder = tmp_path_factory.mktemp("herald")
    channels = folder / "channels.toml"
    channels.write_text(channels_toml(sandbox, smtp_port(request)))
    (folder / "snippets.toml").write_text(
        '[snippets]\nhours = "We are open 9-5, $contact.firstname."\n'
    )
    env = {
        "HERALD_BROKER_URL": redis_url,
        "HERALD_REDIS_URL": redis_url,
        "HERALD_CHANNELS_FILE": str(channels),
        "HERALD_SNIPPETS_FILE": str(folder / "snippets.toml"),
        "HERALD_EVENTS_STREAM": f"herald:events:test-{RUN}",
        "HERALD_INBOUND_STREAM": f"herald:inbound:test-{RUN}",
        "HERALD_STATUS_STREAM": f"herald:statuses:test-{RUN}",
        "HERALD_QUEUE": f"herald-test-{RUN}",
        "HERALD_TIMEZONE": "Asia/Tokyo",
        "HERALD_RETRY_BACKOFF_S": "0.05",
        "HERALD_RETRY_BACKOFF_MAX_S": "0.5",
        "HERALD_WORKER_CONCURRENCY": "8",
        # Many tests write to one chat: no per-chat limit for Telegram here; the webhook
        # gets a per-recipient limit that test_ratelimit.py checks end to end.
        "HERALD_RATE_LIMITS": json.dumps(
            {"telegram": {"channel": "30/s"}, "custom": {"recipient": "2/s"}}
        ),
        "HERALD_DATA_DIR": str(folder / "data"),
        # The sandbox and the file servers of the tests are on loopback.
        "HERALD_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        # Signed links of library files (providers that only take URLs; LINE wants https).
        "HERALD_FILES_PUBLIC_URL": "https://files.herald.test",
        # A lost job is published again within seconds (tests/test_sweeper.py drops some).
        "HERALD_SWEEP_MARGIN_S": "2",
        "HERALD_TEST_DROP_SET": f"herald:test:drop:{RUN}",
        **secret_env(),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def settings(herald_env: dict[str, str]) -> Settings:
    """The settings the worker under test runs with."""
    return Settings()


@pytest.fixture(scope="session")
def rclient(redis_url: str) -> Iterator[redis.Redis[Any]]:
    """A client of the test Redis."""
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def celery_app(settings: Settings) -> Any:
    """Herald's Celery app, configured for this run."""
    from herald.worker import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
def worker(celery_app: Any, settings: Settings) -> Iterator[Any]:
    """A real Celery worker (threads pool) consuming this run's queue."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app,
        pool="threads",
        concurrency=8,
        queues=list(settings.consumed),
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def webhooks(settings: Settings) -> Iterator[Any]:
    """The webhook server (herald webhooks) of this run's channels, on a free port."""
    from tests.webhook_support import WebhookServer

    with WebhookServer(settings) as server:
        yield server


class Outcomes:
    """Reads this run's outcome stream."""

    def __init__(self, client: redis.Redis[Any], stream: str) -> None:
        self.client = client
        self.stream = stream

    def for_job(self, job_id: str) -> list[OutcomeEvent]:
        """Every event written for ``job_id`` so far."""
        return [
            OutcomeEvent.from_fields(fields)
            for _, fields in self.client.xrange(self.stream)
            if fields["job_id"] == job_id
        ]

    def wait(self, job_id: str, timeout: float = 20.0, settle: float = 0.3) -> OutcomeEvent:
        """The one event of ``job_id``; fails if none comes or if a second one shows up."""
        deadline = time.monotonic() + timeout
        while not self.for_job(job_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"no outcome event for {job_id} within {timeout}s")
            time.sleep(0.05)
        time.sleep(settle)
        events = self.for_job(job_id)
        assert len(events) == 1, f"{len(events)} events for {job_id}"
        return events[0]


class Core:
    """Runs jobs through the send core directly, as a worker would but with no queue: a
    re-queue is waited out here (its countdown, capped) and the job run again."""

    def __init__(self, context: WorkerContext, outcomes: Outcomes) -> None:
        self.context = context
        self.outcomes = outcomes

    def run(self, job: Any, *, task_id: str | None = None, requeues: int = 30) -> Step:
        """Run ``job`` until it finishes; the last step (a :class:`Finished`)."""
        task_id = task_id or str(uuid.uuid4())
        for _ in range(requeues):
            step = self.context.pipeline.send(job, task_id=task_id)
            if isinstance(step, Finished):
                return step
            time.sleep(min(step.after, 5.0))
        raise AssertionError(f"job still re-queued after {requeues} runs")

    def send(self, job: Any, *, task_id: str | None = None) -> OutcomeEvent:
        """Run ``job`` to its end; its outcome event, which must be the job's only one."""
        step = self.run(job, task_id=task_id)
        assert isinstance(step, Finished) and step.event is not None, "it had ended before"
        if step.event.job_id:
            events = self.outcomes.for_job(step.event.job_id)
            assert len(events) == 1, f"{len(events)} events for {step.event.job_id}"
        return step.event


@pytest.fixture(scope="session")
def context(settings: Settings, celery_app: Any) -> Iterator[WorkerContext]:
    """A worker context of this run's settings, built in the test process."""
    built = WorkerContext.build(settings, celery_app)
    yield built
    built.close()


@pytest.fixture(scope="session")
def core(context: WorkerContext, outcomes: Outcomes) -> Core:
    """The send core of this run, driven directly (fast: no worker, no polling)."""
    return Core(context, outcomes)


@pytest.fixture(scope="session")
def outcomes(rclient: redis.Redis[Any], settings: Settings) -> Outcomes:
    """The outcome stream of this run."""
    return Outcomes(rclient, settings.events_stream)


def make_job(channels: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A valid send job with a fresh job_id; ``extra`` overrides top-level fields."""
    job: dict[str, Any] = {
        "job_id": f"t-{uuid.uuid4().hex[:12]}",
        "workflow": {"workflow_id": "wf-1", "run_id": "run-1", "step_id": "step-1"},
        "contact": {
            "id": f"c-{uuid.uuid4().hex[:6]}",
            "fields": {"firstname": "Ana", "lastname": "Silva"},
            "channels": channels
            if channels is not None
            else [{"channel_id": "tg", "identifier": "4242"}],
        },
        "message": {"type": "text", "text": "Hi $contact.firstname"},
    }
    job.update(extra)
    return job


def sandbox_requests(sandbox: Sandbox, provider: str, **match: Any) -> list[dict[str, Any]]:
    """JSON bodies the sandbox received from ``provider`` whose fields match ``match``
    (uploads, multipart bodies, and bodies cut short by a killed worker are not sends)."""
    bodies = [_json_object(r.body) for r in sandbox.requests if r.provider == provider]
    return [b for b in bodies if b is not None and all(_dig(b, k) == v for k, v in match.items())]


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _dig(body: dict[str, Any], dotted: str) -> Any:
    value: Any = body
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as JSON to ``path``."""
    path.write_text(json.dumps(value))
    return path
