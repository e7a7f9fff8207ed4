"""The benchmark runs from one command, reports what it promises and leaves no process
behind. Tiny runs only: nothing here looks at a figure (timings are never asserted)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_KEYS = {
    "scenario",
    "case",
    "kind",
    "setup",
    "repeat",
    "pool",
    "concurrency",
    "latency_ms",
    "status",
    "jobs",
    "seconds",
    "msg_per_s",
    "cpu_s_per_job",
    "redis_calls_per_job",
    "redis_round_trips_per_job",
    "peak_rss_mb",
}


def bench(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def left_behind(folder: str) -> list[str]:
    """Live processes started for the run in ``folder`` (it is in their command line or
    environment: the Redis data folder, the channels file)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            seen = " ".join(proc.info["cmdline"] or []) + " ".join(proc.environ().values())
        except psutil.Error:
            continue
        if folder in seen:
            found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
    return found


@pytest.mark.timeout(300)
def test_a_tiny_run_prints_the_table_and_writes_the_json(tmp_path: Path) -> None:
    # Given a run of one drain scenario and the producer scenario, 20 jobs each
    out = tmp_path / "bench.json"
    run = bench(
        "--scenario",
        "threads",
        "--scenario",
        "enqueue",
        "--jobs",
        "20",
        "--repeat",
        "1",
        "--latency",
        "0",
        "--concurrency",
        "4",
        "--json",
        str(out),
        "--keep",
    )
    stdout, _ = run.communicate(timeout=280)
    # Then it exits 0 and prints both tables
    assert run.returncode == 0, stdout
    for header in ("msg/s", "idle p50/95/99 ms", "CPU ms/job", "Redis cmds/job", "Targets"):
        assert header in stdout, stdout
    # And the JSON holds every case with every figure, and the target of the scenario
    report = json.loads(out.read_text())
    assert {"command", "machine", "runs", "summary", "targets"} <= report.keys()
    drains = [r for r in report["runs"] if r["scenario"] == "threads"]
    assert {r["kind"] for r in drains} == {"celery no-op", "celery http", "herald"}
    for record in drains:
        assert record["status"] == "ok", record
        assert record.keys() >= RUN_KEYS, record
        assert record["jobs"] == 20
        assert record.get("failed_outcomes", 0) == 0, record
    (enqueue,) = [r for r in report["runs"] if r["scenario"] == "enqueue"]
    assert enqueue["status"] == "ok" or enqueue["status"].startswith("n/a"), enqueue
    goals = {g["scenario"]: g for g in report["targets"]}
    assert goals["threads"]["measured"] is not None, goals
    assert goals["threads"]["met"] in (True, False)
    assert goals["enqueue"]["met"] in (True, False, None)
    assert goals[None]["target"] == "peak RSS per Herald worker process"
    # And nothing it started is still running
    folder = re.search(r"logs kept in (\S+)", stdout)
    assert folder is not None, stdout
    assert left_behind(folder[1]) == []
    shutil.rmtree(folder[1], ignore_errors=True)


@pytest.mark.timeout(180)
def test_ctrl_c_stops_every_process_it_started() -> None:
    # Given a run long enough to be interrupted in the middle of a drain
    run = bench(
        "--scenario",
        "threads",
        "--jobs",
        "3000",
        "--latency",
        "200",
        "--concurrency",
        "2",
        "--repeat",
        "1",
        "--keep",
    )
    assert run.stdout is not None
    first = run.stdout.readline()
    folder = re.search(r"logs in (\S+)", first)
    assert folder is not None, first
    deadline = time.monotonic() + 120
    while not list(Path(folder[1]).glob("celery-no-op*.log")):
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()
        time.sleep(0.1)
    time.sleep(2)
    # When it gets Ctrl-C
    run.send_signal(signal.SIGINT)
    stdout = first + run.communicate(timeout=60)[0]
    # Then it says so, exits, and nothing it started is still running
    assert "interrupted" in stdout, stdout
    assert run.returncode == 130, stdout
    assert left_behind(folder[1]) == []
    shutil.rmtree(folder[1], ignore_errors=True)
