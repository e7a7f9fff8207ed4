"""Producers with no Herald code enqueue by task name, and exactly one event appears."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest

from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.usefixtures("worker")

CELERY_PRODUCER = textwrap.dedent(
    """
    import json, sys
    from celery import Celery
    job = json.loads(sys.argv[3])
    app = Celery("any-service", broker=sys.argv[1])
    app.send_task("herald.send_message", kwargs={"job": job}, queue=sys.argv[2])
    assert "herald" not in sys.modules, "the producer imported herald"
    """
)

# A protocol-v2 message built by hand and LPUSHed, as a service in another language
# would (docs/contract.md#enqueueing-by-hand-any-language).
RAW_PRODUCER = textwrap.dedent(
    """
    import base64, json, sys, uuid
    import redis
    job = json.loads(sys.argv[3])
    task_id = str(uuid.uuid4())
    body = [[], {"job": job}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    envelope = {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "headers": {"lang": "py", "task": "herald.send_message", "id": task_id,
                    "root_id": task_id, "parent_id": None, "group": None},
        "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": sys.argv[2]},
                       "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }
    redis.Redis.from_url(sys.argv[1]).lpush(sys.argv[2], json.dumps(envelope))
    assert "herald" not in sys.modules and "celery" not in sys.modules
    """
)


@pytest.mark.parametrize("script", [CELERY_PRODUCER, RAW_PRODUCER], ids=["send_task", "raw_v2"])
def test_producer_without_herald_gets_exactly_one_event(
    script: str, redis_url: str, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job()
    subprocess.run(
        [sys.executable, "-c", script, redis_url, settings.queue, json.dumps(job)],
        check=True,
        timeout=60,
        cwd="/",  # so the checkout's herald package is not importable by accident
    )
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.sent"
    assert event.data.provider_message_ids == [
        "4242:" + event.data.provider_message_ids[0].split(":")[1]
    ]


def test_pickle_message_is_refused_unread(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job()
    celery_app.send_task(
        "herald.send_message", kwargs={"job": job}, queue=settings.queue, serializer="pickle"
    )
    ok = make_job()
    celery_app.send_task("herald.send_message", kwargs={"job": ok}, queue=settings.queue)
    outcomes.wait(ok["job_id"])  # the worker lives on and serves the next job
    assert outcomes.for_job(job["job_id"]) == []


def test_unexpected_task_arguments_become_invalid_job(
    celery_app: Any, settings: Any, outcomes: Outcomes
) -> None:
    task_id = str(uuid.uuid4())
    celery_app.send_task(
        "herald.send_message", kwargs={"jb": make_job()}, queue=settings.queue, task_id=task_id
    )
    event = outcomes.wait(task_id)
    assert event.data.error is not None and event.data.error.code == "invalid_job"
