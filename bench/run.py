"""Running the cases: a Redis per case, pre-queued jobs, a worker, and what it cost.

Each drain gets a Redis of its own (a fresh ``redis-server``, or the ``--redis-url`` one
flushed), so its ``INFO`` counters hold only that case's traffic. N jobs are LPUSHed in a
pipeline as raw Celery protocol-2 messages before the worker starts, so the producer does
not compete with it; the clock starts when the worker takes its first message and stops
at the last outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.baseline import DONE_STREAM
from bench.processes import Child, Processes, Usage
from bench.scenarios import Case, Kind
from herald.testing.processes import RedisServer, protocol_v2

#: The repository root: the children import ``bench`` from it.
ROOT = Path(__file__).resolve().parents[1]
#: The bot token in the channels file (the provider accepts any).
TOKEN = "123456:bench"
EVENTS = "herald:events"
SEND_TASK = "herald.send_message"
BATCH_TASK = "herald.send_batch"
BULK_QUEUE = "herald.bulk"
BARE_QUEUE = "bench"
#: Seconds without a new outcome after which a drain is given up.
STALL_S = 60.0
POLL_S = 0.02


@dataclass(frozen=True)
class Options:
    """What every case shares."""

    folder: Path
    provider_url: str
    redis_url: str | None
    loglevel: str


def make_job(run: str, n: int) -> dict[str, Any]:
    """A text job for the Telegram channel, with one variable to render."""
    return {
        "job_id": f"bench-{run}-{n}",
        "contact": {
            "id": f"c-{n}",
            "fields": {"firstname": "Ana"},
            "channels": [{"channel_id": "tg", "identifier": str(10_000_000 + n)}],
        },
        "message": {"type": "text", "text": "Hi $contact.firstname, your order shipped."},
    }


def redis_totals(client: redis.Redis) -> tuple[int, int]:
    """Commands run (``INFO commandstats`` calls, summed) and socket reads (round trips)."""
    stats = client.info("commandstats")
    calls = sum(int(v["calls"]) for v in stats.values() if isinstance(v, dict))
    reads = int(client.info("stats").get("total_reads_processed", 0))
    return calls, reads


class Runner:
    """Runs cases; every process it starts is in ``processes``."""

    def __init__(self, options: Options, processes: Processes) -> None:
        self.options = options
        self.processes = processes
        self._count = 0
        self._batch_registered: bool | None = None
        #: The version of the Redis server the cases ran on (read from the first one).
        self.redis_version: str | None = None

    # ----------------------------------------------------------------- environment
    @contextlib.contextmanager
    def fresh_redis(self) -> Iterator[str]:
        """A Redis used by one case only."""
        self._count += 1
        if self.options.redis_url:
            client = redis.Redis.from_url(self.options.redis_url)
            client.flushdb()
            client.close()
            self._note_version(self.options.redis_url)
            yield self.options.redis_url
            return
        server = RedisServer(self.options.folder / f"redis-{self._count}").start()
        self.processes.on_close(server.stop)
        try:
            self._note_version(server.url)
            yield server.url
        finally:
            server.stop()

    def _note_version(self, url: str) -> None:
        if self.redis_version is None:
            client = redis.Redis.from_url(url)
            self.redis_version = str(client.info("server").get("redis_version"))
            client.close()

    def set_latency(self, ms: float) -> None:
        httpx.put(f"{self.options.provider_url}/_bench/latency", params={"ms": ms}, timeout=10)

    def env(self, broker: str, case: Case) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "BENCH_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if case.kind in (Kind.NOOP, Kind.HTTP):
            return env | {
                "BENCH_BROKER_URL": broker,
                "BENCH_PROVIDER_URL": f"{self.options.provider_url}/bot{TOKEN}/sendMessage",
                "BENCH_CONCURRENCY": str(case.concurrency or 100),
            }
        channels = self.options.folder / "channels.toml"
        channels.write_text(
            f'[channels.tg]\ntype = "telegram"\nbot_token = "{TOKEN}"\n'
            f'base_url = "{self.options.provider_url}"\n'
        )
        env |= {
            "HERALD_BROKER_URL": broker,
            "HERALD_REDIS_URL": broker,
            "HERALD_CHANNELS_FILE": str(channels),
            "HERALD_DATA_DIR": str(self.options.folder / "herald-data"),
            # No fleet-wide limit: the provider is ours, and 30/s would be the ceiling.
            "HERALD_RATE_LIMITS": json.dumps({"telegram": {}}),
            "HERALD_BULK_QUEUE": BULK_QUEUE,
        }
        if case.pool is not None:
            # Also in the settings: on a Herald where the app's worker_pool beat the flags.
            env["HERALD_WORKER_POOL"] = case.pool
            env["HERALD_WORKER_CONCURRENCY"] = str(case.concurrency)
        return env

    def command(self, case: Case) -> list[str]:
        level = f"--loglevel={self.options.loglevel}"
        if case.kind is Kind.HERALD_HOST:
            return [
                sys.executable,
                "-m",
                "herald.cli",
                "worker",
                f"--loglevel={self.options.loglevel}",
            ]
        app, queues = {
            Kind.NOOP: ("bench.baseline", BARE_QUEUE),
            Kind.HTTP: ("bench.baseline", BARE_QUEUE),
            Kind.HERALD: ("herald.worker", "herald"),
            Kind.HERALD_BATCH: ("herald.worker", f"herald,{BULK_QUEUE}"),
        }[case.kind]
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-E",
            "-Q",
            queues,
            "-n",
            f"bench-{uuid.uuid4().hex[:8]}@%h",
            level,
            f"--pool={case.pool}",
            f"--concurrency={case.concurrency}",
        ]

    def messages(self, case: Case, run: str, count: int) -> tuple[str, list[str]]:
        """The queue and the raw messages of ``count`` jobs for ``case``."""
        jobs = [make_job(run, n) for n in range(count)]
        if case.kind in (Kind.NOOP, Kind.HTTP):
            task = "bench.noop" if case.kind is Kind.NOOP else "bench.http"
            return BARE_QUEUE, [json.dumps(protocol_v2(task, {"job": j}, BARE_QUEUE)) for j in jobs]
        if case.kind is Kind.HERALD_BATCH:
            size = case.batch
            return BULK_QUEUE, [
                json.dumps(protocol_v2(BATCH_TASK, {"jobs": jobs[i : i + size]}, BULK_QUEUE))
                for i in range(0, len(jobs), size)
            ]
        return "herald", [json.dumps(protocol_v2(SEND_TASK, {"job": j}, "herald")) for j in jobs]

    # ----------------------------------------------------------------- drains
    def drain(self, case: Case) -> dict[str, Any]:
        """Pre-queue ``case.jobs``, start the worker, time it to the last outcome."""
        if case.kind is Kind.HERALD_BATCH and not self.batch_registered():
            return {"status": "n/a (task not registered)"}
        self.set_latency(case.latency_ms)
        with self.fresh_redis() as url:
            client = redis.Redis.from_url(url)
            try:
                return self._drain(case, url, client)
            finally:
                client.close()

    def _drain(self, case: Case, url: str, client: redis.Redis) -> dict[str, Any]:
        queue, messages = self.messages(case, uuid.uuid4().hex[:8], case.jobs)
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(messages), 1000):
            pipe.lpush(queue, *messages[start : start + 1000])
            pipe.execute()
        stream = DONE_STREAM if case.kind in (Kind.NOOP, Kind.HTTP) else EVENTS
        worker = self.processes.start(case.label(), self.command(case), self.env(url, case))
        try:
            self._wait_first_take(worker, client, queue, len(messages))
            usage = Usage(worker)
            usage.begin()
            before = redis_totals(client)
            started = time.monotonic()
            done, own = self._wait_outcomes(worker, client, stream, case.jobs)
            seconds = time.monotonic() - started
            after = redis_totals(client)
            cpu, peak, procs = usage.end()
        finally:
            self.processes.stop(worker)
        own += 2  # the INFO calls themselves
        result = self._cost(case, done, seconds, cpu, before, after, own)
        result |= {"peak_rss_mb": round(peak / 2**20, 1), "processes": procs}
        if done < case.jobs:
            result["status"] = self._why(worker, done, case.jobs)
        elif stream == EVENTS:
            result["failed_outcomes"] = _failed(client)
        return result

    def _cost(
        self,
        case: Case,
        done: int,
        seconds: float,
        cpu: float,
        before: tuple[int, int],
        after: tuple[int, int],
        own: int,
    ) -> dict[str, Any]:
        jobs = max(done, 1)
        return {
            "status": "ok",
            "jobs": done,
            "seconds": round(seconds, 3),
            "msg_per_s": round(done / seconds, 1) if seconds > 0 else None,
            "cpu_s_per_job": round(cpu / jobs, 6),
            "redis_calls_per_job": round((after[0] - before[0] - own) / jobs, 2),
            "redis_round_trips_per_job": round((after[1] - before[1] - own) / jobs, 2),
        }

    def _why(self, worker: Child, done: int, total: int) -> str:
        log = worker.tail(20_000)
        if "nregistered task" in log or ("KeyError" in log and BATCH_TASK in log):
            return "n/a (task not registered)"
        return f"stalled ({done}/{total} outcomes)"

    def _wait_first_take(self, worker: Child, client: redis.Redis, queue: str, total: int) -> None:
        """The worker is ready when it has taken the first message off the queue."""
        deadline = time.monotonic() + 120
        while int(client.llen(queue)) >= total:
            if not worker.alive():
                raise RuntimeError(f"{worker.name} exited:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{worker.name} took nothing in 120 s:\n{worker.tail()}")
            time.sleep(0.005)

    def _wait_outcomes(
        self, worker: Child, client: redis.Redis, stream: str, total: int
    ) -> tuple[int, int]:
        """Poll the outcome stream until ``total`` entries; returns (entries, own calls)."""
        calls, done, last_change = 0, 0, time.monotonic()
        while done < total:
            time.sleep(POLL_S)
            now = int(client.xlen(stream))
            calls += 1
            if now != done:
                done, last_change = now, time.monotonic()
            elif self._stuck(worker, last_change):
                break
        return done, calls

    def _stuck(self, worker: Child, last_change: float) -> bool:
        """No outcome for too long, the worker gone, or the task refused as unknown."""
        if time.monotonic() - last_change > STALL_S or not worker.alive():
            return True
        return "nregistered task" in worker.tail(4000)

    def batch_registered(self) -> bool:
        """Whether this Herald registers ``herald.send_batch`` (asked once, in a child)."""
        if self._batch_registered is None:
            code = (
                "import sys; from herald.worker import app; "
                f"sys.exit(0 if {BATCH_TASK!r} in app.tasks else 3)"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
            env["HERALD_BROKER_URL"] = "redis://127.0.0.1:1/0"  # read, never connected
            found = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, timeout=120
            )
            self._batch_registered = found.returncode == 0
        return self._batch_registered

    # ----------------------------------------------------------------- idle latency
    def idle(self, case: Case) -> dict[str, Any]:
        """One job at a time: enqueue -> outcome, ``case.jobs`` samples after a warm-up."""
        self.set_latency(case.latency_ms)
        with self.fresh_redis() as url:
            client = redis.Redis.from_url(url)
            worker = self.processes.start(case.label(), self.command(case), self.env(url, case))
            try:
                return self._idle(case, client, worker)
            finally:
                self.processes.stop(worker)
                client.close()

    def _idle(self, case: Case, client: redis.Redis, worker: Child) -> dict[str, Any]:
        stream = DONE_STREAM if case.kind in (Kind.NOOP, Kind.HTTP) else EVENTS
        queue, messages = self.messages(case, uuid.uuid4().hex[:8], case.jobs + 6)
        last = "0-0"
        samples: list[float] = []
        for n, message in enumerate(messages):
            sent = time.perf_counter()
            client.lpush(queue, message)
            wait_ms = 120_000 if n == 0 else 10_000  # the first waits for the worker to start
            while True:
                if not worker.alive():
                    raise RuntimeError(f"{worker.name} exited:\n{worker.tail()}")
                got: Any = client.xread({stream: last}, count=1, block=wait_ms)
                if got:
                    break
                raise RuntimeError(f"{worker.name}: no outcome in {wait_ms} ms:\n{worker.tail()}")
            took = time.perf_counter() - sent
            last = got[0][1][0][0].decode()
            if n >= 6:  # after the warm-up
                samples.append(took * 1000)
            time.sleep(0.01)
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        return {
            "status": "ok",
            "samples": len(samples),
            "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(cuts[94], 2),
            "p99_ms": round(cuts[98], 2),
        }

    # ----------------------------------------------------------------- producer
    def enqueue_many(self, case: Case) -> dict[str, Any]:
        """``enqueue_many`` from one child process; it times the call itself."""
        with self.fresh_redis() as url:
            client = redis.Redis.from_url(url)
            before = redis_totals(client)
            env = self.env(url, case)
            argv = [sys.executable, "-m", "bench.enqueue", str(case.jobs), str(case.batch)]
            found = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
            after = redis_totals(client)
            client.close()
        lines = found.stdout.strip().splitlines()
        if found.returncode != 0 or not lines:
            return {"status": f"failed: {(found.stderr or found.stdout)[-300:]}"}
        result: dict[str, Any] = json.loads(lines[-1])
        if result.get("status") == "ok":
            jobs = max(int(result["jobs"]), 1)
            result["redis_calls_per_job"] = round((after[0] - before[0] - 2) / jobs, 3)
            result["redis_round_trips_per_job"] = round((after[1] - before[1] - 2) / jobs, 3)
        return result


def _failed(client: redis.Redis) -> int:
    """Outcome events that are not ``message.sent`` (a benchmark should have none)."""
    failed, last = 0, "-"
    while True:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(  # type: ignore[assignment]
            EVENTS, min=last, count=5000
        )
        fresh = [(key.decode(), fields) for key, fields in entries if key.decode() != last]
        if not fresh:
            return failed
        failed += sum(fields.get(b"event") != b"message.sent" for _, fields in fresh)
        last = fresh[-1][0]
