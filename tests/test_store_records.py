"""The job record's scripts, called directly on the real Redis: claim, progress, finish,
interactions, the pending index and its reaping."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from herald.contract.events import EventData, OutcomeEvent
from herald.store.keys import STATS_KEY, interactions_key, job_key, lease_key
from herald.store.records import DeliveryStore
from herald.store.scripts import GCRA, TAKE
from herald.store.snippets import live_snippets

NOW = "2026-12-01T10:00:00Z"


@pytest.fixture
def store(rclient: redis.Redis[Any]) -> Iterator[DeliveryStore]:
    """A store on its own queue and stream; every key it wrote is deleted after the test."""
    run = uuid.uuid4().hex[:8]
    made = DeliveryStore(
        rclient,
        events_stream=f"herald:events:test-store-{run}",
        retention_s=60,
        lease_s=10,
        queue=f"herald-test-store-{run}",
    )
    yield made
    rclient.delete(made.events_stream, made.pending.key, made.pending.watermark_key)
    for pattern in ("herald:job:ts-*", "herald:lease:ts-*", "herald:contact:ts-*"):
        for key in rclient.scan_iter(pattern):
            rclient.delete(key)


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


def test_a_first_claim_takes_the_lease_and_clears_the_pending_entry(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.pending.record(job, json.dumps({"job_id": job}))
    enqueued = rclient.zscore(store.pending.key, job)
    claim = store.claim(job, "tok-1", now=NOW, contact_id="ts-nobody")
    assert (claim.status, claim.attempts, claim.first_seen, claim.parts) == ("claimed", 0, NOW, {})
    assert not claim.in_doubt
    assert rclient.get(lease_key(job)) == "tok-1"
    assert 0 < rclient.ttl(lease_key(job)) <= 10
    assert rclient.hget(job_key(job), "state") == "sending"
    assert rclient.zscore(store.pending.key, job) is None
    assert float(rclient.get(store.pending.watermark_key)) == enqueued
    assert claim.snippets == live_snippets(rclient)


def test_a_claim_run_twice_is_harmless_and_another_copy_is_told_to_wait(
    store: DeliveryStore,
) -> None:
    job = job_id()
    assert store.claim(job, "tok-1", now=NOW, contact_id="ts-c").status == "claimed"
    again = store.claim(job, "tok-1", now=NOW, contact_id="ts-c")
    assert again.status == "claimed" and not again.in_doubt
    busy = store.claim(job, "tok-2", now=NOW, contact_id="ts-c")
    assert busy.status == "busy" and 1 <= busy.lease_left <= 10


def test_a_claim_after_a_lapsed_lease_mid_send_is_in_doubt_and_counted(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.claim(job, "tok-1", now=NOW, contact_id="ts-c")
    before = int(rclient.hget(STATS_KEY, "in_doubt") or 0)
    rclient.delete(lease_key(job))  # the worker died with the lease, which then lapsed
    claim = store.claim(job, "tok-2", now="2026-12-01T11:00:00Z", contact_id="ts-c")
    assert claim.status == "claimed" and claim.in_doubt
    assert claim.first_seen == NOW  # the first claim's time is kept
    assert rclient.hget(job_key(job), "in_doubt") == "1"
    assert int(rclient.hget(STATS_KEY, "in_doubt") or 0) >= before + 1


def test_progress_is_kept_for_the_next_claim_and_release_hands_the_lease_back(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.claim(job, "tok-1", now=NOW, contact_id="ts-c")
    assert store.save_progress(job, "tok-1", attempts=1, parts={0: ["m-0"]})
    assert rclient.get(lease_key(job)) == "tok-1"
    assert store.save_progress(job, "tok-1", attempts=2, parts={0: ["m-0"]}, release=True)
    assert rclient.get(lease_key(job)) is None
    assert rclient.hget(job_key(job), "state") == "retrying"
    claim = store.claim(job, "tok-2", now=NOW, contact_id="ts-c")
    assert (claim.status, claim.attempts, claim.parts) == ("claimed", 2, {0: ["m-0"]})
    assert not claim.in_doubt  # 'retrying' is a clean hand-over
    # The first attempt no longer holds the lease: its progress is not written.
    assert not store.save_progress(job, "tok-1", attempts=9, parts={})
    assert rclient.hget(job_key(job), "attempts") == "2"


def test_finish_writes_one_event_and_ends_the_job(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.pending.record(job, json.dumps({"job_id": job}))
    store.claim(job, "tok-1", now=NOW, contact_id="ts-c")
    entry = store.finish(event(job), "tok-1", key=job, parts={0: ["m-0"]})
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
    assert 0 < rclient.ttl(job_key(job)) <= 60
    # A second finish, and any later copy, writes nothing.
    assert store.finish(event(job, "failed"), "tok-2", key=job, parts={}) is None
    assert rclient.xlen(store.events_stream) == 1
    assert store.claim(job, "tok-3", now=NOW, contact_id="ts-c").status == "done"


def test_finish_without_a_claim_clears_the_pending_entry_and_leaves_other_leases(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.pending.record(job, json.dumps({"job_id": job}))
    rclient.set(lease_key(job), "someone-else", ex=10)
    assert store.finish(event(job, "failed", 0), "tok-1", key=job, parts={}) is not None
    assert rclient.zscore(store.pending.key, job) is None
    assert rclient.get(lease_key(job)) == "someone-else"


def test_an_older_interaction_never_overwrites_a_newer_one(store: DeliveryStore) -> None:
    contact = f"ts-{uuid.uuid4().hex[:8]}"
    assert store.record_interaction(contact, "wa", "351911", 2_000, "b")
    assert not store.record_interaction(contact, "wa", "351911", 1_000, "a")
    assert not store.record_interaction(contact, "wa", "351911", 2_000, "b again")
    assert store.record_interaction(contact, "tg", "42", 500, "c")
    claim = store.claim(job_id(), "tok", now=NOW, contact_id=contact)
    assert claim.interactions == {
        "wa": {"at_ms": 2_000, "at": "b", "identifier": "351911"},
        "tg": {"at_ms": 500, "at": "c", "identifier": "42"},
    }
    store.redis.delete(interactions_key(contact))


def test_recording_a_pending_job_twice_keeps_the_first_record(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    job = job_id()
    store.pending.record(job, "first")
    score = rclient.zscore(store.pending.key, job)
    assert abs(float(score or 0) - time.time() * 1000) < 5_000
    store.pending.record(job, "second")
    assert rclient.hgetall(job_key(job)) == {"state": "pending", "payload": "first"}
    assert rclient.zscore(store.pending.key, job) == score


def test_a_lost_job_is_taken_by_one_sweep_and_a_recordless_one_dropped(
    store: DeliveryStore, rclient: redis.Redis[Any]
) -> None:
    lost, gone = job_id(), job_id()
    store.pending.record(lost, "payload-of-lost")
    rclient.zadd(store.pending.key, {lost: 1_000, gone: 2_000})  # long ago; gone has no record
    idle = f"{store.pending.key}:queue"  # an empty queue: nothing can still wait in it
    assert store.pending.reap(min_age_s=60, slack_s=0, queue_key=idle) == [
        (lost, "payload-of-lost")
    ]
    assert rclient.zscore(store.pending.key, gone) is None
    # Taken: its score is now, so the next sweep leaves it until it is old again.
    assert store.pending.reap(min_age_s=60, slack_s=0, queue_key=idle) == []
    assert rclient.zscore(store.pending.key, lost) is not None


def test_list_scripts_refuse_keys_and_args_that_do_not_pair(rclient: redis.Redis[Any]) -> None:
    with pytest.raises(redis.ResponseError, match="one record key"):
        TAKE.on(rclient)(keys={"pending": "ts-p", "records": []}, args={"suspects": ["a", 1]})
    with pytest.raises(redis.ResponseError, match="one interval_ms"):
        GCRA.on(rclient)(keys={"buckets": ["ts-b"]}, args={"limits": [10]})


def test_a_client_without_decoded_replies_works_the_same(redis_url: str) -> None:
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    job = job_id()
    store = DeliveryStore(
        client, events_stream=f"herald:events:{job}", retention_s=5, lease_s=5, queue=job
    )
    try:
        claim = store.claim(job, "tok", now=NOW, contact_id="ts-c")
        assert (claim.status, claim.first_seen) == ("claimed", NOW)
        assert store.save_progress(job, "tok", attempts=1, parts={0: ["m"]})
        assert store.finish(event(job), "tok", key=job, parts={0: ["m"]})
        assert store.claim(job, "tok", now=NOW, contact_id="ts-c").status == "done"
    finally:
        client.delete(store.events_stream, job_key(job), lease_key(job))
        client.close()
