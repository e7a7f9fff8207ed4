"""``herald redis url|stop`` for the embedded Redis that outlives ``herald worker``, and
``herald ping`` (the image's health check) against real servers and a real worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import cli
from herald.store import embedded

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return runner.invoke(cli, list(args), env=env)


def herald_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``herald worker`` in a child process, once it is ready; its output in ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "herald.cli", "worker", "--concurrency=1"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"herald worker did not start: {log.read_text()}")
        time.sleep(0.1)
    return process


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """An embedded Redis data folder; its server is stopped in the end, however it went."""
    folder = tmp_path / "data"
    yield folder
    embedded.stop(folder)


def test_the_embedded_redis_outlives_the_worker_and_is_printed_and_stopped(
    tmp_path: Path, data: Path
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text("")
    env: dict[str, str | None] = {
        "HERALD_DATA_DIR": str(data),
        "HERALD_BROKER_URL": None,
        "HERALD_REDIS_URL": None,
        "HERALD_QUEUE": f"herald-embedded-{uuid.uuid4().hex[:6]}",
        "HERALD_CHANNELS_FILE": str(channels),
    }
    none_yet = run("redis", "url", env=env)
    assert none_yet.exit_code == 1 and "no embedded Redis runs for" in none_yet.stderr

    # Given `herald worker`, which started the embedded Redis and said where it is
    log = tmp_path / "worker.log"
    worker_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    worker = herald_worker(worker_env, log)
    try:
        said = re.search(r"embedded Redis at (redis://\S+)", log.read_text())
        assert said, log.read_text()
        url = run("redis", "url", env=env)
        assert url.exit_code == 0 and url.stdout.strip() == said[1]
        busy = run("redis", "stop", env=env)
        assert busy.exit_code == 1 and "client(s) are connected" in busy.stderr
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: an idle worker exits at once
        assert worker.wait(timeout=90) == 0

    # When the worker has exited, the server still runs: its URL, then stop
    assert run("redis", "url", env=env).stdout.strip() == said[1]
    stopped = run("redis", "stop", env=env)
    assert stopped.exit_code == 0, stopped.output
    assert embedded.running_url(data) is None
    assert run("redis", "url", env=env).exit_code == 1


@pytest.mark.usefixtures("herald_env")
def test_ping_names_the_servers_and_the_worker_that_answers(worker: Any) -> None:
    result = run("ping", "--worker", worker.hostname)

    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("ok: ") and line.endswith(f"{worker.hostname} answers")
    assert "HERALD_REDIS_URL" in line


@pytest.mark.usefixtures("herald_env", "worker")
def test_ping_fails_in_one_line_when_the_worker_asked_for_does_not_answer() -> None:
    result = run("ping", "--worker", "celery@nobody-here", "--timeout", "0.5")

    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("herald: worker celery@nobody-here did not answer a ping within 0.5s")


def _rabbitmq() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _rabbitmq(), reason="no RabbitMQ on 127.0.0.1:5672")
@pytest.mark.usefixtures("herald_env")
def test_ping_checks_an_amqp_broker_and_the_state_redis_apart() -> None:
    result = run(
        "ping", "--timeout", "0.5", env={"HERALD_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
    )

    assert result.exit_code == 0, result.output
    assert "the broker at amqp://guest:****@127.0.0.1:5672// (HERALD_BROKER_URL)" in result.stdout
    assert "(HERALD_REDIS_URL) answer" in result.stdout
