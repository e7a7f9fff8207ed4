"""The benchmark's results: summaries per case, targets met or not, a table and JSON."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.scenarios import RSS_LIMIT_MB, Case, Kind, Scenario, Target

Record = dict[str, Any]
HERALD_KINDS = {Kind.HERALD, Kind.HERALD_HOST, Kind.HERALD_BATCH}


def _median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(statistics.median(found), 4) if found else None


def _rate(record: Record) -> float | None:
    value = record.get("jobs_per_s", record.get("msg_per_s"))
    return float(value) if value is not None else None


def summarize(records: list[Record]) -> list[Record]:
    """One row per scenario and case: medians over the repeats that ran to the end."""
    rows: list[Record] = []
    seen: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        seen.setdefault((record["scenario"], record["case"]), []).append(record)
    for (scenario, case), runs in seen.items():
        ok = [r for r in runs if r.get("status") == "ok"]
        first = runs[0]
        row: Record = {
            "scenario": scenario,
            "case": case,
            "kind": first["kind"],
            "setup": first["setup"],
            "repeats": len(ok),
            "status": "ok" if ok else runs[-1].get("status", "?"),
        }
        rates = [rate for rate in map(_rate, ok) if rate is not None]
        row["msg_per_s"] = _median(rates)
        row["msg_per_s_range"] = [min(rates), max(rates)] if rates else None
        for key in (
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "cpu_s_per_job",
            "redis_calls_per_job",
            "redis_round_trips_per_job",
        ):
            row[key] = _median(r.get(key) for r in ok)
        peaks = [r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb") is not None]
        row["peak_rss_mb"] = max(peaks) if peaks else None
        row["failed_outcomes"] = sum(int(r.get("failed_outcomes", 0)) for r in ok)
        rows.append(row)
    return rows


def _metric(record: Record, idle: bool) -> float | None:
    if record.get("status") != "ok":
        return None
    return record.get("p50_ms") if idle else _rate(record)


def targets(scenarios: list[Scenario], records: list[Record]) -> list[Record]:
    """Every target of the scenarios run: the ratio of each repeat, their median, met?"""
    out: list[Record] = []
    for scenario in scenarios:
        target = scenario.target
        if target is None:
            continue
        mine = [r for r in records if r["scenario"] == scenario.name]
        cases = {case.kind: case for case in scenario.cases}
        values: list[float] = []
        status = "ok"
        for repeat in sorted({r["repeat"] for r in mine}):
            runs = {r["kind"]: r for r in mine if r["repeat"] == repeat}
            top_run = runs.get(target.numerator, {})
            top = _metric(top_run, scenario.idle)
            if target.denominator is None:
                base: float | None = 1.0
            else:
                base = _metric(runs.get(target.denominator, {}), scenario.idle)
            if top is None or not base:
                status = str(top_run.get("status", "n/a")) if top is None else "n/a (baseline)"
                continue
            values.append(top / base)
        measured = _median(values)
        met = (
            None
            if measured is None
            else (measured >= target.ratio if target.at_least else measured <= target.ratio)
        )
        out.append(
            {
                "scenario": scenario.name,
                "what": scenario.title,
                "target": _name(scenario, target, cases),
                "goal": f"{'>=' if target.at_least else '<='} {target.ratio:g}{target.unit}",
                "measured": round(measured, 3) if measured is not None else None,
                "per_repeat": [round(v, 3) for v in values],
                "unit": target.unit,
                "met": met,
                "status": "ok" if measured is not None else status,
            }
        )
    peaks = [
        r["peak_rss_mb"]
        for r in records
        if r["kind"] in HERALD_KINDS and r.get("status") == "ok" and r.get("peak_rss_mb")
    ]
    if peaks:
        out.append(
            {
                "scenario": None,
                "what": "the largest peak RSS of any Herald worker process in the run",
                "target": "peak RSS per Herald worker process",
                "goal": f"<= {RSS_LIMIT_MB:g} MB",
                "measured": max(peaks),
                "per_repeat": [],
                "unit": " MB",
                "met": max(peaks) <= RSS_LIMIT_MB,
                "status": "ok",
            }
        )
    return out


def _name(scenario: Scenario, target: Target, cases: dict[Kind, Case]) -> str:
    """What a target compares, with the setups actually run (flags may change them)."""
    top = cases[target.numerator]
    name = f"{scenario.name}: {top.kind} ({top.setup()})"
    if target.denominator is not None:
        base = cases[target.denominator]
        name += f" / {base.kind} ({base.setup()})"
    return f"{name}, idle p50" if scenario.idle else name


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def print_tables(console: Console, rows: list[Record], goals: list[Record]) -> None:
    """The summary table and the targets table."""
    table = Table(title="Herald benchmark (medians over repeats)", show_lines=False)
    for name, justify in (
        ("scenario", "left"),
        ("case", "left"),
        ("setup", "left"),
        ("msg/s", "right"),
        ("idle p50/95/99 ms", "right"),
        ("CPU ms/job", "right"),
        ("Redis cmds/job", "right"),
        ("trips/job", "right"),
        ("peak RSS MB", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "note")  # type: ignore[arg-type]
    for row in rows:
        idle = (
            f"{row['p50_ms']:.1f}/{row['p95_ms']:.1f}/{row['p99_ms']:.1f}"
            if row.get("p50_ms") is not None
            else "-"
        )
        cpu = row.get("cpu_s_per_job")
        note = "" if row["status"] == "ok" else str(row["status"])
        if row.get("failed_outcomes"):
            note = f"{row['failed_outcomes']} failed outcomes " + note
        table.add_row(
            row["scenario"],
            row["kind"],
            row["setup"],
            "-" if row.get("p50_ms") is not None else _num(row.get("msg_per_s")),
            idle,
            _num(cpu * 1000 if cpu is not None else None, "{:.2f}"),
            _num(row.get("redis_calls_per_job"), "{:.1f}"),
            _num(row.get("redis_round_trips_per_job"), "{:.1f}"),
            _num(row.get("peak_rss_mb"), "{:.0f}"),
            note,
        )
    console.print(table)
    goal_table = Table(title="Targets (ratios within one run)")
    for name in ("target", "goal", "measured", "per repeat", "met"):
        goal_table.add_column(name)
    for goal in goals:
        measured = goal["measured"]
        shown = "-" if measured is None else f"{measured:g}{goal['unit']}"
        met = {True: "met", False: "NOT met", None: goal["status"]}[goal["met"]]
        goal_table.add_row(
            goal["target"],
            goal["goal"],
            shown,
            ", ".join(f"{v:g}" for v in goal["per_repeat"]),
            met,
        )
    console.print(goal_table)


def markdown(rows: list[Record], goals: list[Record]) -> str:
    """Both tables as Markdown, for docs/performance.md."""
    lines = [
        "| scenario | case | setup | msg/s | idle p50/95/99 ms | CPU ms/job | Redis cmds/job "
        "| trips/job | peak RSS MB | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        idle = row.get("p50_ms") is not None
        cpu = row.get("cpu_s_per_job")
        cells = [
            row["scenario"],
            row["kind"],
            row["setup"],
            "-" if idle else _num(row.get("msg_per_s")),
            f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f} / {row['p99_ms']:.1f}" if idle else "-",
            _num(cpu * 1000 if cpu is not None else None, "{:.2f}"),
            _num(row.get("redis_calls_per_job"), "{:.1f}"),
            _num(row.get("redis_round_trips_per_job"), "{:.1f}"),
            _num(row.get("peak_rss_mb"), "{:.0f}"),
            "" if row["status"] == "ok" else str(row["status"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| target | goal | measured | per repeat | met |", "|---|---|---|---|---|"]
    for goal in goals:
        measured = goal["measured"]
        met = {True: "met", False: "**not met**", None: goal["status"]}[goal["met"]]
        cells = [
            goal["target"],
            goal["goal"].replace(">=", "≥").replace("<=", "≤"),
            "-" if measured is None else f"{measured:g}{goal['unit']}",
            ", ".join(f"{v:g}" for v in goal["per_repeat"]),
            met,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
