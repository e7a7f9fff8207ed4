"""Crash and outage safety with real processes: SIGKILL mid-send, SIGTERM, Redis restarts.

Each test runs its own Redis server (AOF on) and ``herald worker`` child processes, with a
short visibility timeout so a dead worker's message comes back within seconds.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from herald.config import Settings
from herald.contract.names import BATCH_TASK, SEND_TASK
from herald.producer import Producer
from herald.store.keys import STATS_KEY
from herald.testing.processes import RedisServer, WorkerProcess
from herald.testing.sandbox import Sandbox
from tests.conftest import Outcomes, make_job, sandbox_requests

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def env(herald_env: dict[str, str], own_redis: RedisServer) -> dict[str, str]:
    return {
        **os.environ,
        **herald_env,
        "HERALD_BROKER_URL": own_redis.url,
        "HERALD_REDIS_URL": own_redis.url,
        "HERALD_VISIBILITY_TIMEOUT_S": "6",
        "HERALD_LEASE_S": "4",
    }


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.alive:
            worker.kill()


def spawn(workers: list[WorkerProcess], env: dict[str, str], tmp_path: Path) -> WorkerProcess:
    worker = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log").start()
    workers.append(worker)
    return worker


def enqueue(url: str, queue: str, job: Any, *, task: str = SEND_TASK) -> None:
    """Publish ``job`` by task name (a batch's jobs with ``task=BATCH_TASK``)."""
    producer = Celery("producer", broker=url, set_as_current=False)
    try:
        arg = "jobs" if task == BATCH_TASK else "job"
        producer.send_task(task, kwargs={arg: job}, queue=queue)
    finally:
        producer.close()


def own_outcomes(server: RedisServer, settings: Any) -> Outcomes:
    """The outcome stream on this test's own Redis."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    return Outcomes(client, settings.events_stream)


def wait_for_request(sandbox: Sandbox, chat: str, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(sandbox_requests(sandbox, "telegram", chat_id=chat)) < count:
        assert time.monotonic() < deadline, "the provider never received the request"
        time.sleep(0.02)


def chat_job() -> tuple[str, dict[str, Any]]:
    chat = str(uuid.uuid4().int % 10**9)
    return chat, make_job([{"channel_id": "tg", "identifier": chat}])


@pytest.mark.parametrize("policy", ["at_least_once", "at_most_once"])
def test_sigkill_after_the_request_left_is_in_doubt(
    policy: str,
    env: dict[str, str],
    own_redis: RedisServer,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    env = {**env, "HERALD_IN_DOUBT": policy}
    first = spawn(workers, env, tmp_path)
    chat, job = chat_job()
    sandbox.delay(5)  # the provider processes the send, then is slow to answer
    try:
        enqueue(own_redis.url, settings.queue, job)
        wait_for_request(sandbox, chat)
        first.kill()  # the worker dies with the request answered by nobody
    finally:
        sandbox.delay(0)
    spawn(workers, env, tmp_path)
    outcomes = own_outcomes(own_redis, settings)
    event = outcomes.wait(job["job_id"], timeout=60, settle=1.0)
    assert outcomes.client.hget(STATS_KEY, "in_doubt") == "1"
    sends = sandbox_requests(sandbox, "telegram", chat_id=chat)
    if policy == "at_least_once":
        assert event.event == "message.sent"
        assert len(sends) == 2  # the in-doubt resend: counted above
    else:
        assert event.event == "message.failed"
        assert event.data.error is not None
        assert event.data.error.code == "provider_unavailable"
        assert "in doubt" in event.data.error.message
        assert len(sends) == 1


def test_sigterm_finishes_the_send_in_flight(
    env: dict[str, str],
    own_redis: RedisServer,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    worker = spawn(workers, env, tmp_path)
    chat, job = chat_job()
    sandbox.delay(0.8)  # in flight at the SIGTERM, and within the deadline (lease / 3)
    try:
        enqueue(own_redis.url, settings.queue, job)
        wait_for_request(sandbox, chat)
        assert worker.terminate() == 0
    finally:
        sandbox.delay(0)
    outcomes = own_outcomes(own_redis, settings)
    # The worker has exited: the event was written before it did.
    [event] = outcomes.for_job(job["job_id"])
    assert (event.event, event.data.attempts) == ("message.sent", 1)
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat)) == 1
    # The worker logged at INFO; the bot token (in Telegram's URL path) is in no line.
    assert env["SANDBOX_TELEGRAM"] not in worker.log.read_text()


def test_redis_restart_with_aof_loses_no_queued_job(
    env: dict[str, str],
    own_redis: RedisServer,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    jobs = [make_job() for _ in range(20)]
    for job in jobs:
        enqueue(own_redis.url, settings.queue, job)
    own_redis.restart()
    spawn(workers, env, tmp_path)
    outcomes = own_outcomes(own_redis, settings)
    for job in jobs:
        assert outcomes.wait(job["job_id"], timeout=60, settle=0).event == "message.sent"
    assert all(len(outcomes.for_job(job["job_id"])) == 1 for job in jobs)


def test_broker_outage_makes_workers_reconnect_not_die(
    env: dict[str, str],
    own_redis: RedisServer,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    worker = spawn(workers, env, tmp_path)
    own_redis.restart(down_s=3)
    jobs = [make_job() for _ in range(5)]
    for job in jobs:
        enqueue(own_redis.url, settings.queue, job)
    outcomes = own_outcomes(own_redis, settings)
    for job in jobs:
        assert outcomes.wait(job["job_id"], timeout=60, settle=0).event == "message.sent"
    assert worker.alive


def test_two_workers_and_duplicate_enqueues_send_each_job_once(
    env: dict[str, str],
    own_redis: RedisServer,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    spawn(workers, env, tmp_path)
    spawn(workers, env, tmp_path)
    jobs = [chat_job() for _ in range(30)]
    for _, job in jobs:
        for _ in range(3):  # an ambiguous publish retried, a producer retrying...
            enqueue(own_redis.url, settings.queue, job)
    outcomes = own_outcomes(own_redis, settings)
    for _, job in jobs:
        event = outcomes.wait(job["job_id"], timeout=60, settle=0)
        assert event.event == "message.sent", event.data.error
    time.sleep(1.0)
    for chat, job in jobs:
        assert len(outcomes.for_job(job["job_id"])) == 1
        assert len(sandbox_requests(sandbox, "telegram", chat_id=chat)) == 1


def test_a_channels_file_broken_after_start_is_never_read_again(
    env: dict[str, str],
    own_redis: RedisServer,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    # Given a worker started on a good channels file, which is then broken,
    channels = tmp_path / "channels.toml"
    channels.write_text(Path(env["HERALD_CHANNELS_FILE"]).read_text())
    worker = spawn(workers, {**env, "HERALD_CHANNELS_FILE": str(channels)}, tmp_path)
    channels.write_text("[channels.tg]\ntype = 'telegram'\nbot_token = '${NOT_SET_ANYWHERE}'\n")
    lines_before = len(worker.log.read_text().splitlines())
    # when a job comes,
    chat, job = chat_job()
    enqueue(own_redis.url, settings.queue, job)
    # then it is sent with the configuration the worker validated at start (no hot loop of
    # receive, reject, receive: the file is not read per job), with a handful of log lines.
    event = own_outcomes(own_redis, settings).wait(job["job_id"], timeout=20)
    assert event.event == "message.sent"
    time.sleep(2)
    assert len(worker.log.read_text().splitlines()) - lines_before < 20
    assert len(sandbox_requests(sandbox, "telegram", chat_id=chat)) == 1


RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not rabbitmq_reachable(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_on_rabbitmq_a_backlog_older_than_the_margin_is_never_republished(
    env: dict[str, str],
    own_redis: RedisServer,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    from herald.core.sweeper import Sweeper
    from herald.store.connection import build_store

    queue = f"herald-rabbit-{uuid.uuid4().hex[:8]}"
    rabbit_env = {
        **env,
        "HERALD_BROKER_URL": RABBITMQ,
        "HERALD_REDIS_URL": own_redis.url,
        "HERALD_QUEUE": queue,
        "HERALD_SWEEP_MARGIN_S": "1",
    }
    own = Settings(broker_url=RABBITMQ, redis_url=own_redis.url, queue=queue, sweep_margin_s=1)
    app = Celery("producer", broker=RABBITMQ, set_as_current=False)
    store = build_store(own, max_connections=4)
    chats = [str(uuid.uuid4().int % 10**9) for _ in range(30)]
    try:
        # Given 30 jobs queued on RabbitMQ with no worker, waiting past the margin,
        with Producer(app, own, store=store) as producer:
            ids = [
                producer.enqueue(make_job([{"channel_id": "tg", "identifier": c}])) for c in chats
            ]
        time.sleep(2.5)
        # when the sweeper looks at them, it publishes none (the broker keeps its queue),
        published: list[str] = []
        sweeper = Sweeper(
            store,
            lambda job_id, *_: published.append(job_id),
            queues=[queue],
            redis_broker=False,
        )
        assert sweeper.run_once() == 0 and published == []
        # and once a worker runs, each job is sent exactly once.
        spawn(workers, rabbit_env, tmp_path)
        outcomes = own_outcomes(own_redis, settings)
        for job_id in ids:
            assert outcomes.wait(job_id, timeout=60, settle=0).event == "message.sent"
        for c in chats:
            assert len(sandbox_requests(sandbox, "telegram", chat_id=c)) == 1
    finally:
        store.redis.close()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        app.close()


def test_a_worker_killed_mid_batch_loses_no_job_and_duplicates_no_event(
    env: dict[str, str],
    own_redis: RedisServer,
    settings: Any,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    queues = [settings.queue, settings.bulk]
    jobs = [chat_job()[1] for _ in range(60)]
    enqueue(own_redis.url, settings.bulk, jobs, task=BATCH_TASK)
    outcomes = own_outcomes(own_redis, settings)
    sandbox.delay(0.3)
    try:
        # Given a worker that has sent part of a batch when it is killed,
        first = WorkerProcess(env, tmp_path / "first.log", concurrency=2, queues=queues)
        workers.append(first.start())
        deadline = time.monotonic() + 60
        while len(outcomes.client.xrange(outcomes.stream)) < 10:
            assert time.monotonic() < deadline, "the batch did not start"
            time.sleep(0.05)
        first.kill()
        ended_before = len(outcomes.client.xrange(outcomes.stream))
        assert ended_before < len(jobs), "the batch ended before the kill"
        # when another worker comes up,
        second = WorkerProcess(env, tmp_path / "second.log", concurrency=2, queues=queues)
        workers.append(second.start())
        # every job ends with exactly one event, and all are sent.
        events = [outcomes.wait(j["job_id"], timeout=90, settle=0) for j in jobs]
    finally:
        sandbox.delay(0)
    assert {e.event for e in events} == {"message.sent"}
    time.sleep(1)
    assert len(outcomes.client.xrange(outcomes.stream)) == len(jobs)
    print(
        f"\nkilled mid-batch after {ended_before} of {len(jobs)} jobs; 0 lost, 0 duplicate events"
    )


def test_a_single_job_goes_before_a_broadcast_queued_ahead_of_it(
    env: dict[str, str],
    own_redis: RedisServer,
    settings: Any,
    sandbox: Sandbox,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given a broadcast of 10,000 jobs on the bulk queue, then one single job,
    broadcast = [chat_job()[1] for _ in range(10_000)]
    client = redis.Redis.from_url(own_redis.url)
    app = Celery("producer", broker=own_redis.url, set_as_current=False)
    own = Settings(broker_url=own_redis.url, redis_url=own_redis.url)
    with Producer(app, own) as producer:
        producer.enqueue_many(broadcast, batch_size=100)
        queues = [own.queue, own.bulk]
        worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=8, queues=queues)
        workers.append(worker.start())
        outcomes = own_outcomes(own_redis, settings)
        deadline = time.monotonic() + 60
        while not outcomes.client.xlen(outcomes.stream):
            assert time.monotonic() < deadline, "the broadcast did not start"
            time.sleep(0.05)
        _, single = chat_job()
        started = time.monotonic()
        producer.enqueue(single)
        # its event comes while the broadcast is still being sent.
        outcomes.wait(single["job_id"], timeout=30, settle=0)
    took = time.monotonic() - started
    left = client.llen(own.bulk)
    app.close()
    print(f"\na single job behind a 10,000-job broadcast: its event in {took:.2f} s")
    assert left > 0, "the broadcast was over before the single job was taken"
