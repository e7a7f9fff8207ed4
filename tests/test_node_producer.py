"""The Node.js producer of examples/node (celery-node) enqueues a job that a real worker
sends, gets its outcome event back from the stream, and keeps the job out of kwargsrepr.

``npm ci`` installs the example into a temp folder (npm's cache kept between runs); with
no npm, or no registry, the test is skipped with the reason printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from herald.worker.envelope import Limits, check
from tests.conftest import Outcomes, make_job

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "node"
NPM_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "herald-tests-npm"


def _skip(reason: str) -> None:
    print(f"skipping the Node.js producer test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/node, installed with ``npm ci`` in a temp folder."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        _skip("node or npm is not installed")
    folder = tmp_path_factory.mktemp("node") / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("node_modules"))
    command = [str(npm), "ci", "--no-audit", "--no-fund", "--prefer-offline"]
    try:
        result = subprocess.run(
            [*command, "--cache", str(NPM_CACHE)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        _skip("npm ci did not finish in 300 s (is the npm registry reachable?)")
    if result.returncode != 0:
        said = [line for line in result.stderr.splitlines() if "complete log" not in line]
        _skip(f"npm ci failed (is the npm registry reachable?): {(said or ['no output'])[0]}")
    return folder


def node_producer(
    example: Path, job: dict[str, Any], redis_url: str, *, queue: str, stream: str, wait_s: float
) -> subprocess.CompletedProcess[str]:
    (example / "job.json").write_text(json.dumps(job))
    env = {
        "PATH": os.environ["PATH"],
        "HERALD_BROKER_URL": redis_url,
        "HERALD_QUEUE": queue,
        "HERALD_EVENTS_STREAM": stream,
        "HERALD_WAIT_S": str(wait_s),
    }
    return subprocess.run(
        ["node", "enqueue.js", "job.json"],
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.usefixtures("worker")
def test_a_node_producer_gets_the_outcome_event_through_a_real_worker(
    example: Path, redis_url: str, settings: Any, outcomes: Outcomes
) -> None:
    job = make_job(failure_branch=True)

    result = node_producer(
        example, job, redis_url, queue=settings.queue, stream=settings.events_stream, wait_s=30
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["job_id"] == job["job_id"] and printed["event"] == "message.sent"
    assert printed["data"]["next"] == "success"
    assert outcomes.wait(job["job_id"]).data.outcome == "sent"  # and it is the only one


def test_the_node_producers_message_hides_the_job_and_passes_the_workers_check(
    example: Path, redis_url: str, rclient: redis.Redis[Any]
) -> None:
    queue = f"herald-node-{uuid.uuid4().hex[:8]}"  # no worker consumes it
    job = make_job()
    try:
        result = node_producer(
            example, job, redis_url, queue=queue, stream="herald:events:none", wait_s=0.2
        )
        assert result.returncode == 1 and "no outcome" in result.stderr
        [raw] = rclient.lrange(queue, 0, -1)
    finally:
        rclient.delete(queue)

    envelope = check(raw, Limits(envelope_bytes=1 << 20, body_bytes=1 << 20))
    headers = envelope["headers"]
    assert headers["task"] == "herald.send_message" and headers["id"] == job["job_id"]
    assert headers["kwargsrepr"] == f"{{'job': <job {job['job_id']}>}}"
    assert "Ana" not in json.dumps(headers)
