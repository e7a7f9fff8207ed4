"""``herald job ID`` looks one job up (record and event), ``herald send`` says when a job_id
has finished already, and the events table shows why a job failed; through a real worker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import cli
from tests.conftest import Outcomes, make_job

pytestmark = pytest.mark.usefixtures("worker")
runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(cli, list(args), input=stdin)


def test_job_shows_its_record_and_its_event(outcomes: Outcomes) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job([{"channel_id": "tg", "identifier": chat}])
    assert run("send", "-", stdin=json.dumps(job)).exit_code == 0
    event = outcomes.wait(job["job_id"])
    [provider_id] = event.data.provider_message_ids

    shown = run("job", job["job_id"])
    as_json = run("job", job["job_id"], "--json")

    assert shown.exit_code == 0, shown.output
    for needle in ("state", "sent", "attempts", "part 0", provider_id, "message.sent", "success"):
        assert needle in shown.stdout
    view = json.loads(as_json.stdout)
    assert view["record"]["state"] == "sent" and view["record"]["attempts"] == "1"
    assert view["record"]["parts"] == {"0": [provider_id]}
    assert "payload" not in view["record"]  # the job's content stays out of it
    assert view["event"]["job_id"] == job["job_id"] and view["entry_id"]


def test_sending_a_finished_job_again_says_so_and_sends_nothing(outcomes: Outcomes) -> None:
    job = make_job(failure_branch=True)
    run("send", "-", stdin=json.dumps(job))
    outcomes.wait(job["job_id"])

    again = run("send", "-", stdin=json.dumps(job))

    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == job["job_id"]
    assert f"job {job['job_id']} already finished: message.sent, next success" in again.stderr
    assert len(outcomes.for_job(job["job_id"])) == 1


def test_a_failed_job_shows_its_error_in_the_table_and_the_lookup(outcomes: Outcomes) -> None:
    job = make_job([{"channel_id": "nowhere", "identifier": "x"}])
    run("send", "-", stdin=json.dumps(job))
    error = outcomes.wait(job["job_id"]).data.error
    assert error is not None and error.code == "no_channel"

    table = run("events", "--count", "200")
    looked_up = run("job", job["job_id"])

    [row] = [line for line in table.stdout.splitlines() if job["job_id"] in line]
    assert f"no_channel: {error.message[:30]}" in row
    assert f"no_channel: {error.message}" in looked_up.stdout


def test_an_unknown_job_is_an_error() -> None:
    result = run("job", f"never-{uuid.uuid4().hex}")
    assert result.exit_code == 1
    assert result.stderr.startswith("herald: no job never-")
