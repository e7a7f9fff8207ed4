"""Size limits of the send core: a job's size, and what its content may render to."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest

from herald.contract.errors import InvalidContent
from herald.contract.job import Contact, TextMessage
from herald.core.render import Budget, RenderContext, render_message
from herald.testing.sandbox import Sandbox
from tests.conftest import Core, make_job, sandbox_requests


def test_a_job_over_the_payload_cap_is_invalid_job_under_its_own_id(
    core: Core, sandbox: Sandbox, settings: object
) -> None:
    job = make_job([{"channel_id": "tg", "identifier": "cap-1"}])
    job["variables"] = {"blob": {"x": "y" * (300 * 1024)}}  # over the 256 KiB default

    event = core.send(job)

    assert (event.event, event.job_id) == ("message.failed", job["job_id"])
    assert event.data.error is not None and event.data.error.code == "invalid_job"
    assert "HERALD_MAX_PAYLOAD_BYTES" in event.data.error.message
    assert sandbox_requests(sandbox, "telegram", chat_id="cap-1") == []


def test_a_job_just_under_the_cap_is_sent(core: Core) -> None:
    job = make_job([{"channel_id": "tg", "identifier": "cap-2"}])
    job["variables"] = {"blob": {"x": "y" * (200 * 1024)}}
    assert core.send(job).event == "message.sent"


def test_content_that_renders_past_the_budget_fails_before_it_is_built(core: Core) -> None:
    # Given 400 references to a 200 KB value (an 80 MB text, were it built),
    job = make_job([{"channel_id": "tg", "identifier": "cap-3"}])
    job["variables"] = {"a": {"b": "v" * (200 * 1024)}}
    job["channel_responses"] = {"tg": {"type": "text", "text": "$a.b " * 400}}

    event = core.send(job)

    # then the job fails as content no channel takes, naming the channel it was for.
    assert event.data.error is not None and event.data.error.code == "invalid_content"
    assert "renders to over" in event.data.error.message
    assert (event.data.channel_id, event.data.channel_type) == ("tg", "telegram")


def test_rendering_stops_at_the_budget_without_building_more() -> None:
    ctx = RenderContext(
        contact=Contact(id="c-1"),
        assignee=None,
        variables={"a": {"b": "v" * (1024 * 1024)}},
        now=datetime(2026, 12, 1, tzinfo=UTC),
        budget=Budget(256 * 1024),
    )
    message = TextMessage(type="text", text="$a.b " * 400)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidContent):
            render_message(message, ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # a few copies of one value at most, not 400


def test_the_budget_is_shared_by_every_text_of_a_message() -> None:
    ctx = RenderContext(
        contact=Contact(id="c-1"),
        assignee=None,
        variables={"v": {"x": "12345"}},
        now=datetime(2026, 12, 1, tzinfo=UTC),
        budget=Budget(12),
    )
    reply = {"title": "$v.x"}
    fits = TextMessage(type="text", text="$v.x", quick_replies=[reply])  # type: ignore[list-item]
    assert render_message(fits, ctx).text == "12345"  # type: ignore[union-attr]
    with pytest.raises(InvalidContent):  # 10 of 12 spent: another 5 do not fit
        render_message(fits, ctx)
