"""The blocking detector: a warning with the blocking call's stack, once per stall."""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
import time
from pathlib import Path

import pytest

import faust
from faust.blocking import BlockingDetector
from faust.exceptions import ImproperlyConfigured
from tests.unit.test_cli import _faust, _run_until


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a call that does not await


async def test_a_blocking_call_is_reported_once_with_its_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = BlockingDetector(0.2)
    await detector.start()
    try:
        with caplog.at_level(logging.WARNING, logger="faust.blocking"):
            await asyncio.sleep(0.3)  # turning: no warning
            hold_the_loop(0.8)
            await asyncio.sleep(0.3)
    finally:
        await detector.stop()
    warnings = [r.getMessage() for r in caplog.records if r.name == "faust.blocking"]
    assert detector.detections == 1, warnings
    assert len(warnings) == 1
    assert "blocked for" in warnings[0] and "blocking_timeout=0.2" in warnings[0]
    # The stack names the call that holds the loop.
    assert "hold_the_loop" in warnings[0] and "time.sleep(seconds)" in warnings[0]


async def test_two_stalls_are_two_warnings_and_awaiting_is_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = BlockingDetector(0.2)
    await detector.start()
    try:
        with caplog.at_level(logging.WARNING, logger="faust.blocking"):
            for _ in range(10):
                await asyncio.sleep(0.05)
            assert detector.detections == 0
            hold_the_loop(0.6)
            await asyncio.sleep(0.3)
            hold_the_loop(0.6)
            await asyncio.sleep(0.3)
    finally:
        await detector.stop()
    assert detector.detections == 2


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="blocking_timeout must be > 0"):
        BlockingDetector(0)
    with pytest.raises(ImproperlyConfigured, match="blocking_timeout"):
        faust.App("blocking-bad", blocking_timeout=-1).conf  # noqa: B018
    assert faust.App("blocking-ok", blocking_timeout="1.5").conf.blocking_timeout == 1.5
    assert faust.App("blocking-off").conf.blocking_timeout is None


@pytest.fixture
def stalling_app(tmp_path: Path) -> Path:
    (tmp_path / "stall.py").write_text(
        textwrap.dedent(
            """
            import time
            import faust

            app = faust.App("stall")

            def crunch_numbers():
                time.sleep(1.5)

            @app.timer(interval=0.5)
            async def busy():
                crunch_numbers()
                print("CRUNCHED", flush=True)
            """
        )
    )
    return tmp_path


def test_worker_blocking_timeout_option_logs_the_blocking_function(stalling_app: Path) -> None:
    out = _run_until(
        [
            sys.executable, "-m", "faust", "-A", "stall", "-l", "crit", "worker",
            "-l", "warn", "--blocking-timeout", "0.5", "--console-port", "50101",
        ],
        stalling_app,
        "CRUNCHED",
        2,
    )  # fmt: skip
    assert "The event loop has been blocked for" in out, out
    assert "crunch_numbers" in out and "time.sleep(1.5)" in out
    assert "--console-port 50101: there is no aiomonitor console" in out


def test_worker_blocking_timeout_must_be_positive(stalling_app: Path) -> None:
    result = _faust("-A", "stall", "worker", "--blocking-timeout", "0", cwd=stalling_app)
    assert result.returncode == 2
    assert "--blocking-timeout 0.0: give a number of seconds > 0" in result.stderr
    assert "Traceback" not in result.stderr
