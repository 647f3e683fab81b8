"""Shared fixtures: a fresh app on its own embedded broker for each test."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable

import pytest

import faust

_ids = itertools.count()

# Every worker runs a web server, on port 6066 by default: the workers the tests start
# (in this process, and the subprocesses, which inherit this environment) take a free
# port each instead, so that several workers, or several test runs, on one machine do
# not collide. A test that needs a fixed port gives FAUST_WEB_PORT or web_port itself.
os.environ["FAUST_WEB_PORT"] = "0"


@pytest.fixture
async def app() -> AsyncIterator[faust.App]:
    app = faust.App(f"test-app-{next(_ids)}", topic_partitions=4, agent_restart_backoff=0.01)
    yield app
    if app.started:
        await app.stop()


def metric_samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a ``/metrics`` body, parsed by prometheus-client's own parser:
    (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true; fail the test with a clear message if not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(0.005)
