"""A smoke run of ``python -m bench`` on small data, against the suite's Kafka.

Every case runs once and must print its row with a figure; this is not a timing test, so
nothing passes or fails on speed (whether a target is met is not checked).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROWS = ("a", "b", "c", "d", "e", "f", "g", "h.a", "h.b", "x.e", "x.b", "rss")
COMMAND = [
    sys.executable,
    "-m",
    "bench",
    "--events",
    "2000",
    "--runs",
    "1",
    "--restore-records",
    "5000",
    "--rss-keys",
    "5000",
]
BUDGET = 150.0
FIGURE = re.compile(r"\d[\d,]*(\.\d+)? (ev/s|rec/s|ms|MB)$")

pytestmark = pytest.mark.timeout(BUDGET + 30)


def test_bench_prints_every_case(kafka_bootstrap: str) -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    began = time.monotonic()
    result = subprocess.run(
        COMMAND,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUDGET,
    )
    took = time.monotonic() - began
    assert result.returncode == 0, f"python -m bench failed:\n{result.stderr[-4000:]}"
    rows: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in ROWS:
            rows[words[0]] = re.split(r"\s{2,}", line.strip())
    assert sorted(rows) == sorted(ROWS), result.stdout
    for case, columns in rows.items():
        # case, what, faust, yardstick, ratio, target, result
        assert len(columns) == 7, (case, columns)
        assert FIGURE.search(columns[2]), (case, columns)
        assert columns[6] in ("met", "NOT MET", "-"), (case, columns)
    assert took < BUDGET


def test_bench_sensors_prints_the_cost_of_every_case(kafka_bootstrap: str) -> None:
    """``python -m bench.sensors`` (sensors and /metrics on against off) on small data."""
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    result = subprocess.run(
        [sys.executable, "-m", "bench.sensors", "--events", "2000", "--runs", "1"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUDGET,
    )
    assert result.returncode == 0, f"python -m bench.sensors failed:\n{result.stderr[-4000:]}"
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in ("a", "b", "d")
    }
    assert sorted(rows) == ["a", "b", "d"], result.stdout
    for line in rows.values():
        assert re.search(r"ev/s .* -?\d+\.\d% +(met|NOT MET)$", line), line
    # Every on-run rendered /metrics at least once.
    assert re.search(r"[1-9]\d* /metrics renders", result.stdout), result.stdout
