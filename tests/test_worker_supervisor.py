"""``herald worker`` runs one process per core (or ``--processes``), says what it chose,
replaces a process that dies, passes Celery's own flags on, and stops them all on SIGTERM
(and when one refuses its configuration: tests/test_cli.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Celery

from herald.contract.names import SEND_TASK
from herald.worker.supervisor import Plan, host_cores
from tests.conftest import Outcomes, make_job

ROOT = Path(__file__).resolve().parents[1]


def wait_for(log: Path, pattern: str, count: int, timeout: float = 60) -> list[str]:
    """The first ``count`` matches of ``pattern`` in the log, once there are that many."""
    deadline = time.monotonic() + timeout
    while len(found := re.findall(pattern, log.read_text(errors="replace"))) < count:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    return found[:count]


def test_the_plan_names_each_child_and_its_metrics_port() -> None:
    plan = Plan(processes=3, pool="threads", concurrency=50, extra=("-Q", "a"), metrics_port=9000)
    argv = plan.argv(2)
    assert argv[1:6] == ["-m", "celery", "-A", "herald.worker", "worker"]
    assert {"--pool=threads", "--concurrency=50"} <= set(argv) and argv[-2:] == ["-Q", "a"]
    assert plan.env(2, {})["HERALD_METRICS_PORT"] == "9002"
    assert "3 process(es) on 2 core(s), each threads pool x 50" in plan.banner(2, ["q"])
    assert "metrics on port 9000-9002" in plan.banner(2, ["q"])
    assert host_cores() >= 1


def test_herald_worker_supervises_a_process_per_core_and_replaces_a_dead_one(
    herald_env: dict[str, str], outcomes: Outcomes, tmp_path: Path
) -> None:
    # Given `herald worker` with two processes on a queue of its own, given as Celery's -Q,
    queue = f"supervised-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **herald_env, "HERALD_QUEUE": queue}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "herald.cli", "worker", "--processes=2"]
        supervisor = subprocess.Popen(
            [*command, "--concurrency=2", "-Q", queue],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    producer = Celery("producer", broker=herald_env["HERALD_BROKER_URL"], set_as_current=False)
    try:
        # it says what it runs, and both processes come up on that queue;
        wait_for(log, r"herald worker: 2 process\(es\) on \d+ core\(s\), each threads pool x 2", 1)
        names = wait_for(log, r"(celery\d?@\S+) ready\.", 2)
        assert {n.split("@")[0] for n in names} == {"celery", "celery1"}
        assert f".> {queue} " in log.read_text()

        # when one process is killed, another takes its place,
        children = _children(supervisor.pid)
        assert len(children) == 2
        os.kill(children[0], signal.SIGKILL)
        wait_for(log, r"herald worker: process \d exited with -9", 1)
        wait_for(log, r"celery\d?@\S+ ready\.", 3)
        assert len(_children(supervisor.pid)) == 2

        # and jobs are sent,
        jobs = [make_job([{"channel_id": "tg", "identifier": str(700 + n)}]) for n in range(4)]
        for job in jobs:
            producer.send_task(SEND_TASK, kwargs={"job": job}, queue=queue)
        sent: list[Any] = [outcomes.wait(j["job_id"], timeout=60, settle=0) for j in jobs]
        assert {e.event for e in sent} == {"message.sent"}
    finally:
        producer.close()
        # until SIGTERM stops every process, warm, and the supervisor exits 0.
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=90) == 0, log.read_text()[-3000:]
    assert _children(supervisor.pid) == []


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)
