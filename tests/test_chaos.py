"""The chaos script, small: jobs through two worker processes while the provider misbehaves,
a worker is SIGKILLed and Redis restarts. docs/delivery.md has the N = 10,000 run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_small_chaos_run_loses_nothing_and_duplicates_no_event() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "chaos.py"),
            "--jobs",
            "300",
            "--workers",
            "2",
            "--kills",
            "1",
            "--seed",
            "3",
            "--timeout",
            "150",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
    )
    out = result.stdout
    figures = dict(
        re.findall(
            r"^(jobs enqueued|lost jobs|duplicate events|duplicate provider sends"
            r"|in-doubt count)\s+(\d+)",
            out,
            re.M,
        )
    )
    assert figures["jobs enqueued"] == "300", out + result.stderr
    assert figures["lost jobs"] == "0", out
    assert figures["duplicate events"] == "0", out
    assert int(figures["duplicate provider sends"]) <= int(figures["in-doubt count"]), out
    assert "SIGKILL worker" in out and "restart Redis" in out
    assert result.returncode == 0, out + result.stderr[-3000:]
