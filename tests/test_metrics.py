"""A worker's Prometheus metrics, scraped over HTTP from a real worker process after real
sends, with the threads pool and with the prefork pool (several processes, one sum)."""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from herald.contract.names import SEND_TASK
from herald.testing.processes import RedisServer, WorkerProcess, free_port
from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_serves_its_metrics_after_real_sends(
    pool: str,
    herald_env: dict[str, str],
    own_redis: RedisServer,
    tmp_path: Path,
    settings: Any,
) -> None:
    from celery import Celery

    port = free_port()
    env = {
        **os.environ,
        **herald_env,
        "HERALD_BROKER_URL": own_redis.url,
        "HERALD_REDIS_URL": own_redis.url,
        "HERALD_METRICS_PORT": str(port),
        "HERALD_METRICS_BIND": "127.0.0.1",
        "HERALD_WORKER_POOL": pool,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2).start()
    producer = Celery("producer", broker=own_redis.url, set_as_current=False)
    try:
        # Given a job that is sent and one the provider refuses,
        chat = str(uuid.uuid4().int % 10**9)
        sent = make_job([{"channel_id": "tg", "identifier": chat}])
        sent["enqueued_at"] = "2026-01-01T00:00:00Z"  # long ago: a queue wait to observe
        blocked = make_job([{"channel_id": "tg", "identifier": "blocked"}])
        for job in (sent, blocked):
            producer.send_task(SEND_TASK, kwargs={"job": job}, queue=settings.queue)
        import redis

        outcomes = Outcomes(
            redis.Redis.from_url(own_redis.url, decode_responses=True), settings.events_stream
        )
        outcomes.wait(sent["job_id"], timeout=60, settle=0)
        outcomes.wait(blocked["job_id"], timeout=60, settle=0)
        # when Prometheus scrapes the worker,
        deadline = time.monotonic() + 10
        while True:
            found = scrape(port)
            done = found.get(
                (
                    "herald_messages_total",
                    (("channel_type", "telegram"), ("code", ""), ("outcome", "sent")),
                ),
                0,
            )
            if done >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # then it shows the jobs by outcome and code, the provider's latency, the queue
        # wait, the attempts, and the queue's length.
        assert done == 1
        refused = (
            "herald_messages_total",
            (
                ("channel_type", "telegram"),
                ("code", "recipient_unavailable"),
                ("outcome", "failed"),
            ),
        )
        assert found[refused] == 1
        assert (
            found[("herald_provider_request_seconds_count", (("channel_type", "telegram"),))] == 2
        )
        assert found[("herald_queue_wait_seconds_count", ())] >= 1
        assert found[("herald_attempts_count", ())] == 2
        assert found[("herald_queue_length", (("queue", settings.queue),))] == 0
        assert any(name == "herald_jobs_in_flight" for name, _ in found)
    finally:
        producer.close()
        worker.terminate()


def test_the_dashboard_and_the_alerts_use_only_metrics_a_worker_serves() -> None:
    import json
    import re

    from herald.worker import metrics

    served = {"herald_queue_length"}
    for value in vars(metrics).values():
        describe = getattr(value, "describe", None)
        if callable(describe) and not isinstance(value, type):
            for family in describe():
                served |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
                served |= {f"{family.name}_sum", f"{family.name}_count"}
    docs = Path(__file__).resolve().parents[1] / "docs"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    used = set(re.findall(r"herald_[a-z_]+", json.dumps(dashboard)))
    used |= set(re.findall(r"herald_[a-z_]+", (docs / "alerts.yml").read_text()))
    assert used and used <= served, used - served
