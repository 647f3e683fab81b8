"""Background tasks of services and the app: kept until done, crashes logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

import faust
from faust.services import BackgroundTasks, Supervised
from tests.conftest import eventually


async def test_a_crashing_background_task_is_logged_with_its_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks("the-owner")

    async def boom() -> None:
        raise RuntimeError("kaput")

    async def forever() -> None:
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger="faust.services"):
        tasks.spawn(boom(), name="boom")
        waiting = tasks.spawn(forever(), name="forever")
        await eventually(lambda: any("crashed" in r.getMessage() for r in caplog.records))
    [record] = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert record.getMessage() == "Background task boom of 'the-owner' crashed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "kaput"
    await tasks.cancel()
    assert waiting.cancelled()


async def test_a_service_cancels_what_it_spawned_on_stop(app: faust.App) -> None:
    started = asyncio.Event()

    class Sleeper(faust.Service):
        async def on_start(self) -> None:
            self.task = self.spawn(self.sleep())

        async def sleep(self) -> None:
            started.set()
            await asyncio.sleep(3600)

    sleeper = Sleeper(app)
    await sleeper.start()
    await started.wait()
    await sleeper.stop()
    assert sleeper.task.cancelled()


class _Loop:
    """A loop that crashes (after ``runs[i]`` seconds) on each call, then returns."""

    def __init__(self, runs: list[float]) -> None:
        self.runs = list(runs)
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.runs:
            return
        await asyncio.sleep(self.runs.pop(0))
        raise RuntimeError(f"crash {self.calls}")


async def test_a_crashing_loop_is_logged_with_its_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = _Loop([0, 0])
    supervised = Supervised(loop, "the follower", owner="the-table", backoff=0.01)
    with caplog.at_level(logging.ERROR, logger="faust.services"):
        await asyncio.wait_for(supervised.run(), 5)
    assert loop.calls == 3 and supervised.crashes == 2
    records = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(records) == 2
    assert records[0].getMessage().startswith("the follower of 'the-table' crashed after")
    assert "restarting it in 0.0 s" in records[0].getMessage()
    assert records[1].exc_info is not None and str(records[1].exc_info[1]) == "crash 2"


async def test_the_back_off_grows_per_crash_up_to_its_maximum() -> None:
    supervised = Supervised(_Loop([0] * 5), "loop", backoff=0.01, max_backoff=0.04)
    await asyncio.wait_for(supervised.run(), 5)
    assert list(supervised.delays) == [0.01, 0.02, 0.04, 0.04, 0.04]


async def test_the_back_off_starts_over_after_a_healthy_run() -> None:
    # Two quick crashes, then one after a run longer than healthy_after, then a quick one.
    supervised = Supervised(
        _Loop([0, 0, 0.1, 0]), "loop", backoff=0.01, max_backoff=1.0, healthy_after=0.05
    )
    await asyncio.wait_for(supervised.run(), 5)
    assert list(supervised.delays) == [0.01, 0.02, 0.01, 0.02]


async def test_cancelling_stops_the_loop_and_its_restarts() -> None:
    running = asyncio.Event()
    calls = 0

    async def forever() -> None:
        nonlocal calls
        calls += 1
        running.set()
        await asyncio.Event().wait()

    tasks = BackgroundTasks("owner")
    task = tasks.supervise(forever, "forever")
    await running.wait()
    await tasks.cancel()
    assert task.cancelled() and calls == 1
    # Cancelled during its back-off, too.
    waiting = asyncio.ensure_future(Supervised(_Loop([0] * 3), "loop", backoff=60).run())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
