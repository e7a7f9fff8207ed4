"""Flower against a real worker: its HTTP API enqueues a job by task name (behind basic
auth), and its task view shows the job's id, never the job (docs/contract.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Outcomes, make_job

pytest.importorskip("flower", reason="Flower is installed with the test extra")

AUTH = ("ops", "flower-" + uuid.uuid4().hex[:8])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def flower(herald_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``celery -A herald.worker flower`` on loopback, as the compose file runs it."""
    port = free_port()
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "herald.worker",
                "flower",
                f"--port={port}",
                "--address=127.0.0.1",
                f"--basic-auth={AUTH[0]}:{AUTH[1]}",
                "--logging=info",
            ],
            env={**os.environ, **herald_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1)  # its event receiver connects to the broker
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert "Hi Ana" not in log.read_text()  # the job's text reached no log line


@pytest.mark.usefixtures("worker")
def test_flower_enqueues_by_name_and_shows_the_job_id_only(
    flower: str, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job([{"channel_id": "tg", "identifier": str(uuid.uuid4().int % 10**9)}])
    body = {
        "kwargs": {"job": job},
        "queue": settings.queue,
        "kwargsrepr": f"{{'job': <job {job['job_id']}>}}",
    }
    # Without credentials Flower refuses;
    refused = httpx.post(f"{flower}/api/task/async-apply/herald.send_message", json=body)
    assert refused.status_code == 401
    # with them, the job is enqueued and sent,
    answer = httpx.post(
        f"{flower}/api/task/async-apply/herald.send_message", json=body, auth=AUTH, timeout=10
    )
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task-id"]
    event = outcomes.wait(job["job_id"], timeout=30)
    assert event.event == "message.sent"
    # and Flower's task view, fed by the worker's task events, shows its id, not the job.
    deadline = time.monotonic() + 20
    while True:
        info = httpx.get(f"{flower}/api/task/info/{task_id}", auth=AUTH, timeout=5)
        if info.status_code == 200 and info.json().get("state") == "SUCCESS":
            break
        assert time.monotonic() < deadline, info.text
        time.sleep(0.2)
    shown = info.json()
    assert shown["name"] == "herald.send_message"
    assert shown["kwargs"] == f"{{'job': <job {job['job_id']}>}}"
    assert "Hi Ana" not in info.text and "$contact" not in info.text
