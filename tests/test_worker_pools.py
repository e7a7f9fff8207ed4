"""Worker flags win over the settings, and every pool Herald documents sends (the SMTP
adapter under gevent included), through a real ``celery -A herald.worker worker``."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from herald.config import Settings
from herald.contract.names import SEND_TASK
from herald.testing.processes import WorkerProcess
from herald.worker.flags import Flags, given
from tests.conftest import Outcomes, make_job
from tests.smtp_server import SmtpServer

# -- reading the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flags"),
    [
        (["celery", "-A", "herald.worker", "worker"], Flags()),
        (["celery", "-A", "herald.worker", "worker", "-P", "prefork", "-c", "2"],
         Flags(pool="prefork", concurrency=2)),
        (["celery", "worker", "-Pgevent", "-c500", "-Qa,b"],
         Flags(pool="gevent", concurrency=500, queues=("a", "b"))),
        (["celery", "worker", "--pool=solo", "--concurrency", "3", "--queues=x"],
         Flags(pool="solo", concurrency=3, queues=("x",))),
        (["celery", "worker", "--prefetch-multiplier", "4", "-P", "threads", "-P", "solo"],
         Flags(pool="solo", prefetch=4)),
        (["herald", "worker", "-Q", "bulk-only"], Flags(queues=("bulk-only",))),
        # Another command, or a test runner that happens to be given the word: no flags.
        (["celery", "-A", "herald.worker", "inspect", "-P", "solo"], Flags()),
        (["pytest", "-k", "worker", "-c", "2"], Flags()),
        (["celery", "worker", "-c", "auto"], Flags()),
    ],
)  # fmt: skip
def test_the_worker_flags_are_read_from_the_command_line(argv: list[str], flags: Flags) -> None:
    assert given(argv) == flags


def test_flags_replace_the_settings_they_override() -> None:
    settings = Settings(worker_pool="threads", worker_concurrency=7, queue="q")
    over = Flags(pool="prefork", concurrency=2, queues=("q.bulk",), prefetch=3).over(settings)
    assert (over.worker_pool, over.worker_concurrency) == ("prefork", 2)
    assert (over.consumed, over.worker_prefetch) == (("q.bulk",), 3)
    assert Flags().over(settings) is settings
    assert settings.consumed == ("q", "q.bulk")


# -- a real worker per pool --------------------------------------------------------------

#: Celery's banner names each pool so.
BANNER = {"threads": "thread", "prefork": "prefork", "solo": "solo", "gevent": "gevent"}


@pytest.mark.parametrize("pool", ["threads", "prefork", "solo", "gevent"])
def test_every_documented_pool_sends_a_text_and_an_email_with_the_flags_winning(
    pool: str,
    herald_env: dict[str, str],
    settings: Settings,
    outcomes: Outcomes,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    # Given settings that ask for another pool and size than the flags do,
    queue = f"pools-{pool}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        **herald_env,
        "HERALD_QUEUE": queue,
        "HERALD_WORKER_POOL": "prefork" if pool != "prefork" else "threads",
        "HERALD_WORKER_CONCURRENCY": "7",
    }
    log = tmp_path / "worker.log"
    worker = WorkerProcess(env, log, concurrency=2, pool=pool).start()
    producer = Celery("producer", broker=herald_env["HERALD_BROKER_URL"], set_as_current=False)
    try:
        # the worker runs what the flags said,
        banner = re.search(r"concurrency: (\d+) \((\w+)\)", log.read_text())
        assert banner is not None and banner.groups() == ("2", BANNER[pool])
        # and sends a text and an email through it.
        text = make_job([{"channel_id": "tg", "identifier": str(uuid.uuid4().int % 10**9)}])
        recipient = f"pool-{uuid.uuid4().hex[:8]}@example.com"
        mail = make_job(
            [{"channel_id": "mail", "identifier": recipient}],
            channel_responses={"mail": {"type": "email", "subject": "Hi", "text": "Hello"}},
        )
        for job in (text, mail):
            producer.send_task(SEND_TASK, kwargs={"job": job}, queue=queue)
        sent: list[Any] = [outcomes.wait(j["job_id"], timeout=60, settle=0) for j in (text, mail)]
        assert [(e.event, e.data.channel_type) for e in sent] == [
            ("message.sent", "telegram"),
            ("message.sent", "email_smtp"),
        ]
        assert [m for m in smtp_server.messages if m.rcpt_tos == [recipient]]
    finally:
        producer.close()
        assert worker.terminate() == 0, log.read_text()[-3000:]
