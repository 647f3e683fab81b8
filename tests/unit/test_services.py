"""Background tasks of services and the app: kept until done, crashes logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

import faust
from faust.services import BackgroundTasks
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
