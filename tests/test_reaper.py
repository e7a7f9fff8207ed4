"""Jobs the broker loses are published again; jobs still queued are left alone."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from herald.producer import enqueue
from herald.store.reaper import Reaper
from herald.store.records import DeliveryStore
from herald.testing.processes import protocol_v2
from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def store(context: Any) -> DeliveryStore:
    """The state store of this run's worker context."""
    return context.store  # type: ignore[no-any-return]


def reaper(celery_app: Any, settings: Any, store: DeliveryStore) -> Reaper:
    return Reaper(store, celery_app, queue=settings.queue, min_age_s=0, slack_s=0)


def test_enqueue_records_pending_and_the_claim_and_finish_clear_it(
    celery_app: Any, settings: Any, store: DeliveryStore, outcomes: Outcomes, rclient: Any
) -> None:
    job = make_job()
    enqueue(celery_app, job, queue=settings.queue)
    outcomes.wait(job["job_id"], settle=0)
    assert rclient.zscore(store.pending.key, job["job_id"]) is None
    assert rclient.hget(f"herald:job:{job['job_id']}", "payload") is None
    assert float(rclient.get(store.pending.watermark_key)) > 0


def test_a_lost_message_is_published_again_and_sent_once(
    celery_app: Any, settings: Any, store: DeliveryStore, outcomes: Outcomes, rclient: Any
) -> None:
    # Given a job recorded as pending whose message never reached the queue (a worker
    # killed between kombu's BRPOP and its unacked record, or a publish that failed)...
    lost = make_job()
    store.pending.record(lost["job_id"], json.dumps(lost))
    time.sleep(0.01)
    # ...and a later job that a worker has claimed,
    later = make_job()
    enqueue(celery_app, later, queue=settings.queue)
    outcomes.wait(later["job_id"], settle=0)
    # when the reaper sweeps, it publishes the lost one again,
    published = reaper(celery_app, settings, store).run_once()
    assert published >= 1
    # and the job is sent, with one event.
    event = outcomes.wait(lost["job_id"])
    assert event.event == "message.sent"
    assert rclient.zscore(store.pending.key, lost["job_id"]) is None
    assert int(rclient.hget("herald:stats", "republished")) >= 1


def test_a_job_that_may_still_wait_in_its_queue_is_left_alone(
    celery_app: Any, settings: Any, store: DeliveryStore, rclient: Any
) -> None:
    # A queue no worker consumes: messages wait in it, and no job of it was ever claimed.
    idle = f"herald-idle-{uuid.uuid4().hex[:8]}"
    store = DeliveryStore(
        rclient, events_stream=settings.events_stream, retention_s=60, lease_s=10, queue=idle
    )
    queued = make_job()
    store.pending.record(queued["job_id"], json.dumps(queued))
    rclient.lpush(idle, "a message waiting in the queue")
    try:
        sweep = Reaper(store, celery_app, queue=idle, min_age_s=0, slack_s=0)
        assert sweep.run_once() == 0
        assert rclient.zscore(store.pending.key, queued["job_id"]) is not None
    finally:
        rclient.delete(idle, store.pending.key)


def test_a_job_held_unacked_by_a_worker_is_left_alone(
    celery_app: Any, settings: Any, store: DeliveryStore, rclient: Any
) -> None:
    idle = f"herald-idle-{uuid.uuid4().hex[:8]}"
    store = DeliveryStore(
        rclient, events_stream=settings.events_stream, retention_s=60, lease_s=10, queue=idle
    )
    held = make_job()
    store.pending.record(held["job_id"], json.dumps(held))
    # kombu's record of a message a worker has taken and not acked yet.
    message = protocol_v2("herald.send_message", {"job": held}, idle)
    tag = message["properties"]["delivery_tag"]
    rclient.hset("unacked", tag, json.dumps([message, "", idle]))
    try:
        sweep = Reaper(store, celery_app, queue=idle, min_age_s=0, slack_s=0)
        assert sweep.run_once() == 0
    finally:
        rclient.hdel("unacked", tag)
        rclient.delete(store.pending.key)


def test_a_young_pending_job_is_left_alone_even_behind_the_watermark(
    celery_app: Any, settings: Any, store: DeliveryStore, outcomes: Outcomes
) -> None:
    young = make_job()
    store.pending.record(young["job_id"], json.dumps(young))
    time.sleep(0.01)
    later = make_job()
    enqueue(celery_app, later, queue=settings.queue)
    outcomes.wait(later["job_id"], settle=0)
    careful = Reaper(store, celery_app, queue=settings.queue, min_age_s=3600, slack_s=0)
    assert careful.run_once() == 0
    store.redis.zrem(store.pending.key, young["job_id"])
