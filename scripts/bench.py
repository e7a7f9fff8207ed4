"""Throughput of a Herald worker against bare Celery tasks, on the same broker and pool.

    python scripts/bench.py --jobs 3000 --concurrency 64 --latency 0 0.2

For each provider latency, N jobs are pre-queued (while no worker runs), then one worker
process starts and the time from its "ready" to the last completion is measured:

- ``celery no-op``: a bare task that only records its completion (the floor of the stack);
- ``celery http``: a bare task that POSTs to the provider with a pooled httpx client, then
  records its completion (the least a send can do);
- ``herald``: ``herald.send_message`` through the Telegram adapter to the local sandbox,
  with its claim, render, rate-limit check and outcome event.

All use the threads pool with the same concurrency, task events on (as Flower needs),
late acks and prefetch 1. Compare the ratios, not the absolute figures: other load on the
machine moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from herald.testing.processes import RedisServer, protocol_v2  # noqa: E402
from herald.testing.sandbox import DEFAULT_TELEGRAM_TOKEN, Sandbox  # noqa: E402


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.2])
    return parser.parse_args()


def job(n: int) -> dict[str, Any]:
    return {
        "job_id": f"bench-{uuid.uuid4().hex[:8]}-{n}",
        "contact": {
            "id": f"c-{n}",
            "fields": {"firstname": "Ana"},
            "channels": [{"channel_id": "tg", "identifier": str(10_000_000 + n)}],
        },
        "message": {"type": "text", "text": "Hi $contact.firstname, your order shipped."},
    }


def fill(client: redis.Redis, task: str, queue: str, jobs: list[dict[str, Any]]) -> None:
    pipe = client.pipeline(transaction=False)
    for item in jobs:
        pipe.lpush(queue, json.dumps(protocol_v2(task, {"job": item}, queue)))
    pipe.execute()


def drain(command: list[str], env: dict[str, str], done: Any, total: int, log: Path) -> float:
    """Start a worker, wait for ready, time until ``done()`` reaches ``total``."""
    with log.open("wb") as out:
        worker = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while b" ready." not in log.read_bytes():
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.05)
        started = time.monotonic()
        while done() < total:
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def run_case(
    name: str, server: RedisServer, sandbox: Sandbox, folder: Path, args: argparse.Namespace
) -> float:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    client.flushdb()
    jobs = [job(n) for n in range(args.jobs)]
    threads = [f"--concurrency={args.concurrency}", "--pool=threads", "-E", "--loglevel=INFO"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    if name == "herald":
        channels = folder / "channels.toml"
        channels.write_text(
            f'[channels.tg]\ntype = "telegram"\nbot_token = "{DEFAULT_TELEGRAM_TOKEN}"\n'
            f'base_url = "{sandbox.url}"\n'
        )
        env |= {
            "HERALD_BROKER_URL": server.url,
            "HERALD_CHANNELS_FILE": str(channels),
            "HERALD_RATE_LIMITS": json.dumps({"telegram": {}}),
            "HERALD_WORKER_CONCURRENCY": str(args.concurrency),
        }
        fill(client, "herald.send_message", "herald", jobs)
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "herald.worker",
            "worker",
            "-Q",
            "herald",
            *threads,
        ]

        def done() -> int:
            return int(client.xlen("herald:events"))
    else:
        task = "bench.noop" if name == "celery no-op" else "bench.http"
        env |= {
            "BENCH_BROKER_URL": server.url,
            "BENCH_HTTP_URL": f"{sandbox.url}/bot{DEFAULT_TELEGRAM_TOKEN}/sendMessage",
            "PYTHONPATH": str(ROOT),
        }
        fill(client, task, "celery", jobs)
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "scripts.bench_baseline",
            "worker",
            "-Q",
            "celery",
            *threads,
        ]

        def done() -> int:
            return int(client.xlen("bench:done"))

    seconds = drain(command, env, done, args.jobs, folder / f"{name.replace(' ', '-')}.log")
    return args.jobs / seconds


def main() -> int:
    args = parse()
    folder = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    server = RedisServer(folder / "redis").start()
    print(
        f"{args.jobs} jobs, one worker, threads pool, concurrency {args.concurrency}, "
        "task events on",
        flush=True,
    )
    rows = []
    with Sandbox() as sandbox:
        for latency in args.latency:
            sandbox.delay(latency)
            rates = {}
            for name in ("celery no-op", "celery http", "herald"):
                rates[name] = run_case(name, server, sandbox, folder, args)
                print(
                    f"  latency {latency * 1000:.0f} ms  {name:13s} {rates[name]:8.1f} jobs/s",
                    flush=True,
                )
            rows.append((latency, rates))
    server.stop()
    print()
    print("| provider latency | celery no-op | celery http | herald | herald / http |")
    print("|---|---|---|---|---|")
    for latency, rates in rows:
        print(
            f"| {latency * 1000:.0f} ms | {rates['celery no-op']:.0f}/s "
            f"| {rates['celery http']:.0f}/s | {rates['herald']:.0f}/s "
            f"| {rates['herald'] / rates['celery http']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
