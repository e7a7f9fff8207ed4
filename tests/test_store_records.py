"""The job record's scripts, called directly on the real Redis: record, claim, progress,
retry, finish, interactions, and the sweeper's sweep, queued and lock."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from herald.contract.events import EventData, OutcomeEvent
from herald.store.keys import (
    STATS_KEY,
    due_key,
    interactions_key,
    job_key,
    lease_key,
    watermark_key,
)
from herald.store.records import JobRecords
from herald.store.scripts import GCRA, QUEUED
from herald.store.snippets import live_snippets

NOW = "2026-12-01T10:00:00Z"


@pytest.fixture
def store(rclient: redis.Redis[Any]) -> Iterator[JobRecords]:
    """Records on their own stream; every key the test wrote is deleted after it."""
    run = uuid.uuid4().hex[:8]
    made = JobRecords(
        rclient,
        events_stream=f"herald:events:test-store-{run}",
        retention_s=60,
        lease_s=10,
        margin_s=30,
    )
    yield made
    rclient.delete(made.events_stream, due_key(Q), watermark_key(Q), Q)
    for pattern in ("herald:job:ts-*", "herald:lease:ts-*", "herald:contact:ts-*"):
        for key in rclient.scan_iter(pattern):
            rclient.delete(key)


#: The queue of these tests (never consumed: a list nobody pops).
Q = f"herald-test-store-{uuid.uuid4().hex[:8]}"


def claim(store: JobRecords, job: str, token: str, now: str = NOW, contact: str = "ts-c") -> Any:
    return store.claim(
        job, token, now=now, contact_id=contact, payload=json.dumps({"job_id": job}), queue=Q
    )


def job_id() -> str:
    return f"ts-{uuid.uuid4().hex[:12]}"


def event(job: str, outcome: str = "sent", attempts: int = 1) -> OutcomeEvent:
    return OutcomeEvent(
        event=f"message.{outcome}",
        job_id=job,
        data=EventData.model_validate(
            {
                "job_id": job,
                "workflow": None,
                "contact_id": None,
                "channel_id": None,
                "channel_type": None,
                "outcome": outcome,
                "next": "success" if outcome == "sent" else "end",
                "provider_message_ids": [],
                "error": None,
                "attempts": attempts,
                "enqueued_at": NOW,
                "finished_at": NOW,
            }
        ),
    )


def test_a_first_claim_takes_the_lease_and_moves_the_watermark(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, json.dumps({"job_id": job}), queue=Q)
    queued = int(rclient.hget(job_key(job), "queued_ms") or 0)
    found = claim(store, job, "tok-1")
    assert (found.status, found.attempts, found.first_seen, found.parts) == ("claimed", 0, NOW, {})
    assert not found.in_doubt
    assert rclient.get(lease_key(job)) == "tok-1"
    assert 0 < rclient.ttl(lease_key(job)) <= 10
    assert rclient.hget(job_key(job), "state") == "sending"
    # Due when its lease ends, and the queue's watermark is the job's queue time.
    due = float(rclient.zscore(due_key(Q), job) or 0)
    assert 0 < due - time.time() * 1000 <= 11_000
    assert float(rclient.get(watermark_key(Q)) or 0) == queued
    assert found.snippets == live_snippets(rclient)


def test_a_job_enqueued_without_a_record_gets_one_at_its_first_claim(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    claim(store, job, "tok-1")
    record = rclient.hgetall(job_key(job))
    assert (record["state"], record["queue"], json.loads(record["payload"])) == (
        "sending",
        Q,
        {"job_id": job},
    )


def test_a_claim_run_twice_is_harmless_and_another_copy_is_told_it_is_busy(
    store: JobRecords,
) -> None:
    job = job_id()
    assert claim(store, job, "tok-1").status == "claimed"
    again = claim(store, job, "tok-1")
    assert again.status == "claimed" and not again.in_doubt
    busy = claim(store, job, "tok-2")
    assert busy.status == "busy" and 1 <= busy.lease_left <= 10


def test_a_claim_after_a_lapsed_lease_mid_send_is_in_doubt_and_counted(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    claim(store, job, "tok-1")
    before = int(rclient.hget(STATS_KEY, "in_doubt") or 0)
    rclient.delete(lease_key(job))  # the worker died with the lease, which then lapsed
    found = claim(store, job, "tok-2", now="2026-12-01T11:00:00Z")
    assert found.status == "claimed" and found.in_doubt
    assert found.first_seen == NOW  # the first claim's time is kept
    assert rclient.hget(job_key(job), "in_doubt") == "1"
    assert int(rclient.hget(STATS_KEY, "in_doubt") or 0) >= before + 1


def test_progress_is_kept_and_a_retry_hands_the_lease_back_and_is_due_after_its_wait(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    claim(store, job, "tok-1")
    assert store.save_progress(job, "tok-1", attempts=1, parts={0: ["m-0"]}, queue=Q)
    assert rclient.get(lease_key(job)) == "tok-1"
    assert store.schedule_retry(job, "tok-1", attempts=2, parts={0: ["m-0"]}, after_s=60, queue=Q)
    assert rclient.get(lease_key(job)) is None
    assert rclient.hget(job_key(job), "state") == "retrying"
    due = float(rclient.zscore(due_key(Q), job) or 0)
    assert 59_000 < due - time.time() * 1000 <= 61_000
    found = claim(store, job, "tok-2")
    assert (found.status, found.attempts, found.parts) == ("claimed", 2, {0: ["m-0"]})
    assert not found.in_doubt  # 'retrying' is a clean hand-over
    # The first attempt no longer holds the lease: its progress is not written.
    assert not store.save_progress(job, "tok-1", attempts=9, parts={}, queue=Q)
    assert rclient.hget(job_key(job), "attempts") == "2"


def test_finish_writes_one_event_and_ends_the_job(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, json.dumps({"job_id": job}), queue=Q)
    claim(store, job, "tok-1")
    entry = store.finish(event(job), "tok-1", key=job, parts={0: ["m-0"]}, queue=Q)
    assert entry is not None
    [(entry_id, fields)] = rclient.xrange(store.events_stream)
    assert entry_id == entry
    assert (fields["event"], fields["job_id"]) == ("message.sent", job)
    assert json.loads(fields["data"])["attempts"] == 1
    record = rclient.hgetall(job_key(job))
    assert (record["state"], record["attempts"], json.loads(record["parts"])) == (
        "sent",
        "1",
        {"0": ["m-0"]},
    )
    assert "payload" not in record
    assert rclient.get(lease_key(job)) is None
    assert rclient.zscore(due_key(Q), job) is None
    assert 0 < rclient.ttl(job_key(job)) <= 60
    # A second finish, and any later copy, writes nothing.
    assert store.finish(event(job, "failed"), "tok-2", key=job, parts={}, queue=Q) is None
    assert rclient.xlen(store.events_stream) == 1
    assert claim(store, job, "tok-3").status == "done"


def test_finish_never_ends_a_job_another_attempt_holds(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, json.dumps({"job_id": job}), queue=Q)
    rclient.set(lease_key(job), "someone-else", ex=10)
    assert store.finish(event(job, "failed", 0), "tok-1", key=job, parts={}, queue=Q) is None
    assert rclient.get(lease_key(job)) == "someone-else"
    rclient.delete(lease_key(job))
    assert store.finish(event(job, "failed", 0), "tok-1", key=job, parts={}, queue=Q)
    assert rclient.zscore(due_key(Q), job) is None


def test_an_older_interaction_never_overwrites_a_newer_one(store: JobRecords) -> None:
    contact = f"ts-{uuid.uuid4().hex[:8]}"
    assert store.record_interaction(contact, "wa", "351911", 2_000, "b")
    assert not store.record_interaction(contact, "wa", "351911", 1_000, "a")
    assert not store.record_interaction(contact, "wa", "351911", 2_000, "b again")
    assert store.record_interaction(contact, "tg", "42", 500, "c")
    found = claim(store, job_id(), "tok", contact=contact)
    assert found.interactions == {
        "wa": {"at_ms": 2_000, "at": "b", "identifier": "351911"},
        "tg": {"at_ms": 500, "at": "c", "identifier": "42"},
    }
    store.redis.delete(interactions_key(contact))


def test_recording_a_queued_job_twice_keeps_the_first_record(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, "first", queue=Q)
    score = rclient.zscore(due_key(Q), job)
    assert abs(float(score or 0) - (time.time() * 1000 + 30_000)) < 5_000
    store.record_queued(job, "second", queue=Q)
    record = rclient.hgetall(job_key(job))
    assert (record["state"], record["payload"], record["queue"]) == ("queued", "first", Q)
    assert rclient.zscore(due_key(Q), job) == score


def make_due(rclient: redis.Redis[Any], *jobs: str) -> None:
    rclient.zadd(due_key(Q), dict.fromkeys(jobs, 1_000))  # due long ago


def sweep(store: JobRecords, *, redis_broker: bool = True) -> list[tuple[str, str]]:
    found = store.sweep(Q, store.due_ids(Q, limit=100), slack_s=0, redis_broker=redis_broker)
    return sorted((d.kind, d.job_id) for d in found)


def test_a_sweep_publishes_due_retries_and_jobs_cut_off_mid_send(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    retry, cut, live, gone = job_id(), job_id(), job_id(), job_id()
    for job in (retry, cut, live):
        claim(store, job, "tok")
    store.schedule_retry(retry, "tok", attempts=1, parts={}, after_s=0, queue=Q)
    rclient.delete(lease_key(cut))  # its worker died; the lease lapsed
    make_due(rclient, retry, cut, live, gone)  # gone has no record
    found = store.sweep(Q, store.due_ids(Q, limit=100), slack_s=0, redis_broker=True)
    assert sorted((d.kind, d.job_id) for d in found) == sorted([("publish", retry), ("lost", cut)])
    # Each is due again a margin later (a sweeper dying now leaves them to the next sweep);
    # the live one when its lease ends; the one with no record is dropped.
    for job in (retry, cut):
        assert float(rclient.zscore(due_key(Q), job) or 0) > time.time() * 1000 + 25_000
    assert 0 < float(rclient.zscore(due_key(Q), live) or 0) - time.time() * 1000 <= 11_000
    assert rclient.zscore(due_key(Q), gone) is None
    assert sweep(store) == []
    # Once published, a retry is queued again from now.
    store.mark_queued(Q, [d for d in found if d.job_id == retry], redis_broker=True)
    assert rclient.hget(job_key(retry), "state") == "queued"
    assert rclient.hget(job_key(cut), "state") == "sending"  # its next claim is in doubt


def test_a_job_claimed_between_its_publish_and_its_mark_is_left_to_its_worker(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    # Given a retry the sweeper has just published again,
    job = job_id()
    claim(store, job, "tok")
    store.schedule_retry(job, "tok", attempts=1, parts={}, after_s=0, queue=Q)
    make_due(rclient, job)
    [published] = store.sweep(Q, [job], slack_s=0, redis_broker=False)
    # whose copy a worker took at once and scheduled for another retry,
    claim(store, job, "tok2")
    store.schedule_retry(job, "tok2", attempts=2, parts={}, after_s=4, queue=Q)
    retry_at = rclient.zscore(due_key(Q), job)
    # when the sweeper marks it queued (on a broker that keeps its queues, which would take
    # a queued job out of the due set), the new retry stays scheduled.
    store.mark_queued(Q, [published], redis_broker=False)
    assert rclient.hget(job_key(job), "state") == "retrying"
    assert rclient.zscore(due_key(Q), job) == retry_at


def test_a_queued_job_is_lost_on_redis_only_when_it_cannot_still_be_queued(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, json.dumps({"job_id": job}), queue=Q)
    make_due(rclient, job)
    rclient.lpush(Q, "someone else's message")  # the queue is not empty...
    rclient.set(watermark_key(Q), 0)  # ...and nothing newer has been claimed
    assert sweep(store) == []  # it may still be waiting
    make_due(rclient, job)
    rclient.delete(Q)  # an empty queue: it cannot be in it
    assert sweep(store) == [("lost", job)]


def test_a_broker_that_keeps_its_queues_never_loses_a_queued_job(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.record_queued(job, json.dumps({"job_id": job}), queue=Q)
    make_due(rclient, job)
    assert sweep(store, redis_broker=False) == []
    assert rclient.zscore(due_key(Q), job) is None


def test_list_scripts_refuse_keys_and_args_that_do_not_pair(rclient: redis.Redis[Any]) -> None:
    with pytest.raises(redis.ResponseError, match="a record for each"):
        QUEUED.on(rclient)(
            keys={"due": "ts-d", "records": []},
            args={"margin_ms": 1, "redis_broker": "1", "entries": ["a", 1]},
        )
    with pytest.raises(redis.ResponseError, match="one interval_ms"):
        GCRA.on(rclient)(keys={"buckets": ["ts-b"]}, args={"limits": [10]})


def test_the_sweeper_lock_is_held_by_one_owner_at_a_time(store: JobRecords) -> None:
    store.sweeper_key = f"herald:sweeper:ts-{uuid.uuid4().hex[:8]}"  # not the fleet's
    try:
        assert store.hold_sweeper("ts-a", 5)
        assert not store.hold_sweeper("ts-b", 5)
        assert store.hold_sweeper("ts-a", 5)  # renewed
        store.release_sweeper("ts-a")
        assert store.hold_sweeper("ts-b", 5)
    finally:
        store.release_sweeper("ts-b")


def test_a_client_without_decoded_replies_works_the_same(redis_url: str) -> None:
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    job = job_id()
    store = JobRecords(
        client, events_stream=f"herald:events:{job}", retention_s=5, lease_s=5, margin_s=1
    )
    try:
        found = claim(store, job, "tok")
        assert (found.status, found.first_seen) == ("claimed", NOW)
        assert store.save_progress(job, "tok", attempts=1, parts={0: ["m"]}, queue=Q)
        assert store.finish(event(job), "tok", key=job, parts={0: ["m"]}, queue=Q)
        assert claim(store, job, "tok").status == "done"
    finally:
        client.delete(store.events_stream, job_key(job), lease_key(job), due_key(Q))
        client.close()


def test_the_outcome_stream_is_trimmed_by_age_as_events_are_added(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    for n in range(1, 501):  # events from long ago (ids are ms since the epoch)
        rclient.xadd(store.events_stream, {"event": "old"}, id=f"{n}-0")
    job = job_id()
    claim(store, job, "tok-1")
    assert store.finish(event(job), "tok-1", key=job, parts={}, queue=Q)
    # Trimming is approximate (whole blocks of entries), never the new event.
    assert rclient.xlen(store.events_stream) < 200
    [(_, newest)] = rclient.xrevrange(store.events_stream, count=1)
    assert newest["job_id"] == job


def test_fleets_of_other_queues_on_one_redis_each_sweep_their_own(
    store: JobRecords, rclient: redis.Redis[Any]
) -> None:
    from herald.core.sweeper import Sweeper

    # Given two fleets on one Redis, each with a retry now due on its own queue,
    store.sweeper_key = f"herald:sweeper:ts-{uuid.uuid4().hex[:8]}"  # not the suite's
    queues = [f"ts-q-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    published: list[tuple[str, str]] = []
    sweepers = [
        Sweeper(store, lambda job, _j, q, _e: published.append((job, q)), queues=[q],
                redis_broker=True, interval_s=0.05)
        for q in queues
    ]  # fmt: skip
    jobs = []
    for queue in queues:
        job = job_id()
        store.claim(job, "tok", now=NOW, contact_id="ts-c", payload=json.dumps({}), queue=queue)
        store.schedule_retry(job, "tok", attempts=1, parts={}, after_s=0, queue=queue)
        jobs.append((job, queue))
    # when both sweep (the first one started holds the fleet's in-flight lock),
    for sweeper in sweepers:
        sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while sorted(set(published)) != sorted(jobs):
            assert time.monotonic() < deadline, f"published {published}, wanted {jobs}"
            time.sleep(0.05)
    finally:
        for sweeper in sweepers:
            sweeper.stop()
    # each queue's retry was published by its own fleet's sweeper.
    assert rclient.get(store.sweeper_key) is None
