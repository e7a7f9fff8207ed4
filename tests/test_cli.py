"""The herald command: schema, send, events, channels check, snippets, and worker start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import cli
from tests.conftest import Outcomes, make_job, sandbox_requests

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(cli, list(args), input=stdin)


@pytest.mark.parametrize(("which", "title"), [("job", "SendJob"), ("event", "OutcomeEvent")])
def test_schema_prints_json_schema(which: str, title: str) -> None:
    result = run("schema", which)
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["title"] == title
    assert schema.get("additionalProperties") is False


def test_schema_refuses_unknown_name() -> None:
    result = run("schema", "nope")
    assert result.exit_code == 2


@pytest.mark.usefixtures("worker")
def test_send_enqueues_from_stdin_and_prints_job_id(outcomes: Outcomes, sandbox: Any) -> None:
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job([{"channel_id": "tg", "identifier": chat}])
    result = run("send", "-", stdin=json.dumps(job))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == job["job_id"]
    event = outcomes.wait(job["job_id"])
    assert event.event == "message.sent"
    assert event.data.enqueued_at.endswith("Z")  # stamped by the producer
    assert sandbox_requests(sandbox, "telegram", chat_id=chat)


@pytest.mark.usefixtures("herald_env")
def test_send_refuses_an_invalid_job_before_enqueueing(tmp_path: Path) -> None:
    job = make_job(colour="blue")
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    result = run("send", str(path))
    assert result.exit_code == 2
    assert "colour" in result.output


@pytest.mark.usefixtures("worker")
def test_events_json_prints_the_outcome(outcomes: Outcomes) -> None:
    job = make_job()
    run("send", "-", stdin=json.dumps(job))
    outcomes.wait(job["job_id"])
    result = run("events", "--json", "--count", "200")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    mine = [line for line in lines if line["job_id"] == job["job_id"]]
    assert len(mine) == 1 and mine[0]["event"] == "message.sent"
    assert set(mine[0]["data"]) >= {"outcome", "next", "provider_message_ids", "attempts"}


@pytest.mark.usefixtures("herald_env")
def test_channels_check_lists_channels_without_secrets(settings: Any) -> None:
    result = run("channels", "check")
    assert result.exit_code == 0, result.output
    assert "tg" in result.output and "telegram" in result.output
    for name, value in os.environ.items():
        if name.startswith("SANDBOX_") and len(value) > 8:
            assert value not in result.output


def test_channels_check_names_a_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text('[channels.tg]\ntype = "telegram"\nbot_token = "${HERALD_TEST_NOT_SET}"\n')
    result = run("channels", "check", str(path))
    assert result.exit_code == 1
    assert "HERALD_TEST_NOT_SET" in result.output


def test_channels_check_refuses_bad_fields(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text('[channels.hook]\ntype = "custom"\nurl = "not a url"\nsecret = "nope"\n')
    result = run("channels", "check", str(path))
    assert result.exit_code == 1
    assert "channels.hook" in result.output and "url" in result.output


def test_worker_refuses_to_start_on_an_invalid_channels_file(
    tmp_path: Path, herald_env: dict[str, str]
) -> None:
    path = tmp_path / "channels.toml"
    path.write_text('[channels.tg]\ntype = "telegram"\nbot_token = "${HERALD_TEST_NOT_SET}"\n')
    env = {**os.environ, **herald_env, "HERALD_CHANNELS_FILE": str(path)}
    env.pop("HERALD_TEST_NOT_SET", None)
    result = herald_worker_exit(env)
    assert result.returncode != 0
    assert "HERALD_TEST_NOT_SET" in result.stderr + result.stdout


def test_worker_refuses_to_start_on_a_channels_file_named_but_missing(
    tmp_path: Path, herald_env: dict[str, str]
) -> None:
    missing = tmp_path / "chanels.toml"  # a typo
    env = {**os.environ, **herald_env, "HERALD_CHANNELS_FILE": str(missing)}
    # Two processes: the first that refuses stops the other, with its exit code.
    result = herald_worker_exit(env, "--processes=2")
    assert result.returncode == 1
    assert str(missing) in result.stderr + result.stdout
    assert "exited with 1 at start; stopping the others" in result.stderr


def herald_worker_exit(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    """``herald worker`` run to its exit (it should refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "herald.cli", "worker", "--loglevel=WARNING", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.usefixtures("worker")
def test_snippets_edited_at_run_time_apply_without_restart(
    outcomes: Outcomes, sandbox: Any
) -> None:
    name = f"hours{uuid.uuid4().hex[:6]}"
    assert run("snippets", "set", name, "Open 9-5, $contact.firstname.").exit_code == 0
    listed = run("snippets", "list")
    assert f"/{name}" in listed.output and "redis" in listed.output
    chat = str(uuid.uuid4().int % 10**9)
    job = make_job(
        [{"channel_id": "tg", "identifier": chat}],
        message={"type": "text", "text": f"/{name} See https://x.test/{name} and/or call."},
    )
    run("send", "-", stdin=json.dumps(job))
    outcomes.wait(job["job_id"])
    [body] = sandbox_requests(sandbox, "telegram", chat_id=chat)
    assert body["text"] == f"Open 9-5, Ana. See https://x.test/{name} and/or call."
    assert run("snippets", "delete", name).exit_code == 0
    assert run("snippets", "delete", name).exit_code == 1
    assert run("snippets", "set", "bad name!", "x").exit_code == 2


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HERALD_TIMEZONE", "Mars/Olympus", "HERALD_TIMEZONE"),
        ("HERALD_RATE_LIMITS", '{"telegram": {"channel": "30 per s"}}', "HERALD_RATE_LIMITS"),
    ],
)
def test_worker_refuses_to_start_on_bad_settings(
    herald_env: dict[str, str], variable: str, value: str, named: str
) -> None:
    env = {**os.environ, **herald_env, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "herald.cli", "worker", "--loglevel=WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr + result.stdout
