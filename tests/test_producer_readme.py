"""The README's plain ``send_task`` producer runs as written (only the queue and the job_id
are this run's), hides the job from Flower's view, and its job gets its one event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import Outcomes

ROOT = Path(__file__).resolve().parents[1]


def readme_producer() -> str:
    """The first Python block of the README's "Enqueue a job" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Enqueue a job") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no Python example in the README's Enqueue a job section"
    return match[1]


def test_the_example_names_a_broker_the_reader_can_get_and_sets_kwargsrepr() -> None:
    code = readme_producer()
    assert 'os.environ["HERALD_BROKER_URL"]' in code and "herald redis url" in code
    assert "kwargsrepr=" in code


def run_readme(redis_url: str, queue: str, job_id: str) -> None:
    """The README's producer, with this run's queue and a fresh job_id."""
    code = readme_producer()
    code = code.replace('queue="herald"', f"queue={queue!r}")
    code = code.replace('"run-456:step-7"', repr(job_id))
    env = {**os.environ, "HERALD_BROKER_URL": redis_url}
    # cwd="/": the example needs Celery only, not this checkout's herald package.
    subprocess.run([sys.executable, "-c", code], env=env, cwd="/", check=True, timeout=60)


@pytest.mark.usefixtures("worker")
def test_the_readme_producer_runs_and_its_job_gets_one_event(
    redis_url: str, settings: Any, outcomes: Outcomes
) -> None:
    job_id = f"readme-{uuid.uuid4().hex[:8]}:step-7"

    run_readme(redis_url, settings.queue, job_id)

    event = outcomes.wait(job_id)
    assert event.event == "message.sent" and event.data.next == "success"


def test_the_readme_producers_message_shows_flower_the_job_id_only(
    redis_url: str, rclient: redis.Redis[Any]
) -> None:
    queue = f"herald-readme-{uuid.uuid4().hex[:8]}"  # no worker consumes it
    job_id = f"readme-{uuid.uuid4().hex[:8]}:step-7"
    try:
        run_readme(redis_url, queue, job_id)
        [raw] = rclient.lrange(queue, 0, -1)
    finally:
        rclient.delete(queue)

    headers = json.loads(raw)["headers"]
    assert headers["kwargsrepr"] == f"{{'job': <job {job_id}>}}"
    assert "Ana" not in json.dumps(headers)
