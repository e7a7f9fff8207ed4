"""The herald command's failures: a server that does not answer is one line within seconds
(URL with the password hidden, and the variable it came from); bad files and options are
one line too; help, version and empty streams say what they are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import cli
from tests.conftest import make_job

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
#: Nothing listens on port 1; the password must never be printed.
DEAD_REDIS = "redis://:s3cret-pw@127.0.0.1:1/0"
DEAD_AMQP = "amqp://guest:s3cret-pw@127.0.0.1:1//"


def invoke(*args: str, env: dict[str, str | None], stdin: str | None = None) -> Any:
    return runner.invoke(cli, list(args), env=env, input=stdin)


def assert_one_line(result: Any, *needles: str) -> str:
    """The command failed with exactly one line on stderr that holds every needle."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "s3cret-pw" not in result.output
    return str(lines[0])


@pytest.fixture(scope="module")
def job_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("job") / "job.json"
    path.write_text(json.dumps(make_job()))
    return path


COMMANDS = [
    ["send", "{job}"],
    ["events"],
    ["events", "--follow"],
    ["events", "--follow", "--group", "g"],
    ["job", "some-id"],
    ["ping"],
    ["snippets", "list"],
    ["snippets", "set", "hours", "9-5"],
    ["snippets", "delete", "hours"],
    ["demo"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_broker_is_one_line_naming_url_and_variable(
    args: list[str], job_file: Path
) -> None:
    env: dict[str, str | None] = {"HERALD_BROKER_URL": DEAD_REDIS, "HERALD_REDIS_URL": None}
    started = time.monotonic()
    result = invoke(*[a.replace("{job}", str(job_file)) for a in args], env=env)
    assert time.monotonic() - started < 8
    assert_one_line(result, "redis://:****@127.0.0.1:1/0", "HERALD_BROKER_URL")


@pytest.mark.usefixtures("herald_env")
def test_an_unreachable_state_redis_names_herald_redis_url(job_file: Path) -> None:
    result = invoke("send", str(job_file), env={"HERALD_REDIS_URL": DEAD_REDIS})
    assert_one_line(result, "redis://:****@127.0.0.1:1/0", "HERALD_REDIS_URL")


@pytest.mark.usefixtures("herald_env")
def test_an_unreachable_amqp_broker_is_named_once_redis_answers(job_file: Path) -> None:
    result = invoke("send", str(job_file), env={"HERALD_BROKER_URL": DEAD_AMQP})
    assert_one_line(result, "the broker at amqp://guest:****@127.0.0.1:1//", "HERALD_BROKER_URL")


def test_the_error_stays_one_line_when_piped(tmp_path: Path) -> None:
    # A long URL: rich wrapped piped output at 80 columns, cutting the line in pieces.
    url = f"redis://:s3cret-pw@127.0.0.1:1/0?client_name={'x' * 90}"
    env = {**os.environ, "HERALD_BROKER_URL": url, "HERALD_DATA_DIR": str(tmp_path)}
    env.pop("HERALD_REDIS_URL", None)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "herald.cli", "events"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert len(line) > 120 and line.startswith("herald: cannot reach Redis at redis://:****@")
    assert "HERALD_BROKER_URL" in line and "Traceback" not in result.stderr


def test_send_names_a_missing_file() -> None:
    result = invoke("send", "nope.json", env={})
    assert result.exit_code == 2
    assert result.stderr.strip() == "herald: nope.json: No such file or directory"


def test_send_names_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text("{not json")
    result = invoke("send", str(path), env={})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"herald: {path}: not JSON")


def test_a_negative_count_is_a_usage_error() -> None:
    result = invoke("events", "--count", "-1", env={})
    assert result.exit_code == 2
    assert "--count" in result.stderr and "Traceback" not in result.output


@pytest.mark.usefixtures("herald_env")
def test_count_zero_shows_no_past_events(rclient: Any) -> None:
    name = f"herald:events:zero-{uuid.uuid4().hex[:8]}"
    rclient.xadd(name, {"event": "message.sent", "job_id": "x", "data": "{}"})
    result = invoke("events", "--count", "0", env={"HERALD_EVENTS_STREAM": name})
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


@pytest.mark.usefixtures("herald_env")
def test_an_empty_stream_says_so() -> None:
    name = f"herald:events:empty-{uuid.uuid4().hex[:8]}"
    result = invoke("events", env={"HERALD_EVENTS_STREAM": name})
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"herald: no events in {name} yet"


def test_help_shows_flags_as_flags() -> None:
    result = invoke("events", "--help", env={})
    assert result.exit_code == 0
    assert "-f, --follow " in result.stdout
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout


def test_version() -> None:
    from importlib.metadata import version

    result = invoke("--version", env={})
    assert result.exit_code == 0
    assert result.stdout.strip() == f"herald {version('herald')}"


def test_a_bad_setting_is_one_line() -> None:
    result = invoke("events", env={"HERALD_WORKER_CONCURRENCY": "lots"})
    assert_one_line(result, "invalid settings", "HERALD_WORKER_CONCURRENCY")


def test_a_wrong_channel_type_is_named_by_its_value(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text('[channels.wa]\ntype = "whatsap"\n')
    result = invoke("channels", "check", str(path), env={})
    assert result.exit_code == 1
    assert "'whatsap'" in result.stderr and "whatsapp, messenger" in result.stderr
    assert "ChannelType" not in result.stderr


def test_an_unset_variable_does_not_hide_the_files_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(
        '[channels.hook]\ntype = "custom"\nurl = "https://crm.example/h"\n'
        'secret = "${HERALD_TEST_NOT_SET}"\n\n[channels.tg]\ntype = "telegram"\n'
    )
    result = invoke("channels", "check", str(path), env={"HERALD_TEST_NOT_SET": None})
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.count("HERALD_TEST_NOT_SET") == 1
    assert "channels.hook.secret" in line and "channels.channels" not in line
    assert "channels.tg.bot_token" in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--group", "g"], "--group and --consumer read with --follow"),
        (["--follow", "--consumer", "c"], "--consumer needs --group"),
    ],
)
def test_group_options_go_together(args: list[str], said: str) -> None:
    result = invoke("events", *args, env={})
    assert result.exit_code == 2
    assert result.stderr.strip() == f"herald: {said}"
