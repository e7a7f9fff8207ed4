"""What the benchmark measures: scenarios, the cases each one runs, and the targets.

A *case* is one worker configuration draining one queue of pre-queued jobs (or, for the
idle scenario, answering one job at a time). A *scenario* groups the cases that one of
the targets compares, all run in the same invocation on the same machine, so that only
their ratio is read, never an absolute figure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Kind(StrEnum):
    """What a case's worker runs."""

    NOOP = "celery no-op"  # bench.noop: record the completion only
    HTTP = "celery http"  # bench.http: POST with a pooled httpx client, then record
    HERALD = "herald"  # herald.send_message through the Telegram adapter
    HERALD_HOST = "herald worker"  # `herald worker` with its own defaults (pool, processes)
    HERALD_BATCH = "herald batch"  # herald.send_batch, N jobs per queue message
    ENQUEUE_MANY = "enqueue_many"  # the producer's batch publish, from one process


@dataclass(frozen=True)
class Case:
    """One measurement: a worker (or producer) configuration and its load."""

    kind: Kind
    pool: str | None  # None: the worker's own default (the `herald worker` case)
    concurrency: int | None
    latency_ms: float
    jobs: int
    batch: int = 1

    @property
    def key(self) -> tuple[object, ...]:
        """Identical cases within one repeat are measured once and shared."""
        return (self.kind, self.pool, self.concurrency, self.latency_ms, self.jobs, self.batch)

    def setup(self) -> str:
        """Pool, concurrency, provider latency (and jobs per message), in short."""
        if self.kind is Kind.ENQUEUE_MANY:
            return f"one process, {self.batch}/msg"
        where = "defaults" if self.pool is None else f"{self.pool} {self.concurrency}"
        extra = f", {self.batch}/msg" if self.batch > 1 else ""
        return f"{where}, {self.latency_ms:g} ms{extra}"

    def label(self) -> str:
        return f"{self.kind} ({self.setup()})"


@dataclass(frozen=True)
class Target:
    """``numerator / denominator`` (msg/s, or a latency) compared with ``ratio``."""

    numerator: Kind
    denominator: Kind | None  # None: an absolute figure (jobs/s, MB)
    ratio: float
    at_least: bool = True  # False: the measured value must be at most ``ratio``
    unit: str = "x"


@dataclass(frozen=True)
class Scenario:
    """Cases measured together and the target that compares them."""

    name: str
    title: str
    cases: tuple[Case, ...]
    target: Target | None
    idle: bool = False  # latency one job at a time, not a drain


#: Jobs per drain by default: enough for a few seconds at the rates seen on 2 cores.
SINGLE_JOBS = 2000
BATCH_JOBS = 10_000
ENQUEUE_JOBS = 20_000
IDLE_SAMPLES = 200


@dataclass(frozen=True)
class Knobs:
    """The command line's overrides (None: each scenario's own default)."""

    jobs: int | None = None
    latency_ms: float | None = None
    pool: str | None = None
    concurrency: int | None = None
    batch: int = 100
    samples: int | None = None


def _case(
    kind: Kind,
    pool: str | None,
    conc: int | None,
    ms: float,
    jobs: int,
    knobs: Knobs,
    batch: int = 1,
    *,
    idle: bool = False,
) -> Case:
    case = Case(kind, pool, conc, ms, jobs, batch)
    count = knobs.samples if idle else knobs.jobs
    if count is not None:
        case = replace(case, jobs=count)
    if knobs.latency_ms is not None:
        case = replace(case, latency_ms=knobs.latency_ms)
    if pool is not None and knobs.pool is not None:
        case = replace(case, pool=knobs.pool)
    if conc is not None and knobs.concurrency is not None:
        case = replace(case, concurrency=knobs.concurrency)
    return case


def _trio(pool: str, conc: int, ms: float, knobs: Knobs) -> tuple[Case, ...]:
    return tuple(
        _case(kind, pool, conc, ms, SINGLE_JOBS, knobs)
        for kind in (Kind.NOOP, Kind.HTTP, Kind.HERALD)
    )


def scenarios(knobs: Knobs) -> list[Scenario]:
    """Every scenario, in the order they run."""
    batch = max(1, knobs.batch)
    bulk_jobs = BATCH_JOBS
    return [
        Scenario(
            "threads",
            "single jobs, threads 100, provider 200 ms",
            _trio("threads", 100, 200, knobs),
            Target(Kind.HERALD, Kind.HTTP, 0.9),
        ),
        Scenario(
            "prefork",
            "single jobs, prefork 2, provider 0 ms",
            _trio("prefork", 2, 0, knobs),
            Target(Kind.HERALD, Kind.HTTP, 0.8),
        ),
        Scenario(
            "host",
            "one host: `herald worker` defaults vs one bare threads-100 process, 200 ms",
            (
                _case(Kind.HTTP, "threads", 100, 200, SINGLE_JOBS, knobs),
                _case(Kind.HERALD_HOST, None, None, 200, SINGLE_JOBS, knobs),
            ),
            Target(Kind.HERALD_HOST, Kind.HTTP, 2.0),
        ),
        Scenario(
            "batch-200",
            f"broadcast: send_batch of {batch} at 200 ms vs bare threads 100",
            (
                _case(Kind.HTTP, "threads", 100, 200, SINGLE_JOBS, knobs),
                _case(Kind.HERALD_BATCH, "threads", 100, 200, bulk_jobs, knobs, batch),
            ),
            Target(Kind.HERALD_BATCH, Kind.HTTP, 5.0),
        ),
        Scenario(
            "batch-0",
            f"broadcast: send_batch of {batch} at 0 ms vs bare prefork 2",
            (
                _case(Kind.HTTP, "prefork", 2, 0, SINGLE_JOBS, knobs),
                _case(Kind.HERALD_BATCH, "prefork", 2, 0, bulk_jobs, knobs, batch),
            ),
            Target(Kind.HERALD_BATCH, Kind.HTTP, 3.0),
        ),
        Scenario(
            "enqueue",
            f"enqueue_many from one process, {batch} jobs per message",
            (_case(Kind.ENQUEUE_MANY, None, None, 0, ENQUEUE_JOBS, knobs, batch),),
            Target(Kind.ENQUEUE_MANY, None, 20_000, unit="/s"),
        ),
        Scenario(
            "idle",
            "idle enqueue -> outcome, one job at a time, threads 100, provider 0 ms",
            (
                _case(Kind.HTTP, "threads", 100, 0, IDLE_SAMPLES, knobs, idle=True),
                _case(Kind.HERALD, "threads", 100, 0, IDLE_SAMPLES, knobs, idle=True),
            ),
            Target(Kind.HERALD, Kind.HTTP, 1.5, at_least=False),
            idle=True,
        ),
    ]


#: Peak resident memory allowed per Herald worker process, in MB.
RSS_LIMIT_MB = 120.0
NAMES = [s.name for s in scenarios(Knobs())]
