"""Every example in examples/ runs as its docstring says.

Those that fit in one process run here, on the embedded broker; those that need several
processes (which share events only through Kafka) run in
tests/integration/test_kafka_examples.py.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest

from tests.integration import test_kafka_examples
from tests.test_readme import REPO, free_port, run, running

EXAMPLES = REPO / "examples"

#: Each example and the test that runs it.
RUN_BY = {
    "hello.py": "tests/test_readme.py (the quickstart)",
    "word_count.py": "test_word_count_on_one_worker, and with two workers on Kafka",
    "web_client.py": "tests/integration/test_kafka_examples.py",
    "page_views.py": "test_page_views_counts_per_page_in_the_window",
    "users_by_country.py": "test_users_by_country_keeps_a_set_per_country",
    "rpc.py": "test_rpc_asks_the_agent",
    "schedules.py": "test_schedules_runs_the_leader_timer_and_schedules_the_crontab",
    "isolated.py": "test_isolated_keeps_a_total_per_partition",
    "service.py": "test_the_service_runs_its_task_and_timer_and_stops_with_the_worker",
    "testing/orders.py": "test_the_testing_example_passes_under_pytest",
    "testing/test_orders.py": "test_the_testing_example_passes_under_pytest",
}


def test_every_example_is_run_by_a_test() -> None:
    examples = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py"))
    assert examples == sorted(RUN_BY)
    assert hasattr(test_kafka_examples, "test_web_client_asks_the_worker")
    assert hasattr(test_kafka_examples, "test_word_count_workers_answer_for_each_others_words")


async def test_word_count_on_one_worker(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "word_count.py", tmp_path)
    port = free_port()
    base = f"http://{socket.gethostname()}:{port}"
    command = f"python word_count.py worker -l info --web-port {port}"
    with running(command, tmp_path, "Worker ready", timeout=60) as worker:
        async with aiohttp.ClientSession() as session:
            # The timer sends a sample sentence a second; every one of them has 'a',
            # 'faust' or 'stream' in it.
            deadline = time.monotonic() + 30
            while True:
                async with session.get(f"{base}/count/faust/") as response:
                    assert response.status == 200, await response.text()
                    body = await response.json()
                    served_by = response.headers.get("X-Faust-Served-By")
                if body["count"] >= 1:
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)
            assert body["word"] == "faust" and served_by == base
            async with session.get(f"{base}/count/never-said/") as response:
                assert response.status == 200
                assert await response.json() == {"word": "never-said", "count": 0}
    assert worker.returncode == 0, worker.output
    assert "Worker stopped" in worker.output and "Traceback" not in worker.output


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The example module named by the test's parameter, imported fresh."""
    name = request.param
    sys.path.insert(0, str(EXAMPLES))
    try:
        sys.modules.pop(name, None)
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(EXAMPLES))


@pytest.mark.parametrize("example", ["page_views"], indirect=True)
async def test_page_views_counts_per_page_in_the_window(example: ModuleType) -> None:
    view = example.PageView
    async with example.count_views.test_context() as agent:
        puts = [
            await agent.put(view(page=page, user="u"), key=page)
            for page in ["/docs", "/docs", "/", "/docs"]
        ]
        counts = [agent.results[event.message.offset] for event in puts]
    assert counts == [1, 2, 1, 3]
    assert example.views_per_minute["/docs"].now() == 3


@pytest.mark.parametrize("example", ["users_by_country"], indirect=True)
async def test_users_by_country_keeps_a_set_per_country(example: ModuleType) -> None:
    signup = example.Signup
    async with example.index_signups.test_context() as agent:
        for user, country in [("ann", "no"), ("bo", "se"), ("cy", "no"), ("ann", "no")]:
            await agent.put(signup(user=user, country=country))
    assert example.users_by_country["no"] == {"ann", "cy"}
    assert example.users_by_country["se"] == {"bo"}


def test_rpc_asks_the_agent(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "rpc.py", tmp_path)
    output = run("python rpc.py", tmp_path)
    assert output.splitlines() == [
        "ask: 3",
        "map: [0, 2, 4, 6]",
        "kvmap: {'x': 11, 'y': 22}",
        "join: [10, 12]",
    ]


@pytest.mark.parametrize("example", ["schedules"], indirect=True)
def test_schedules_runs_the_leader_timer_and_schedules_the_crontab(
    example: ModuleType, tmp_path: Path
) -> None:
    (crontab,) = [t for t in example.app.timers if t.name.endswith("every_five_minutes")]
    # The next run is at most five minutes away, at a multiple of five minutes.
    assert 0 < crontab.next_delay() <= 300
    shutil.copy(EXAMPLES / "schedules.py", tmp_path)
    with running("python schedules.py worker -l info", tmp_path, "leader tick", count=2):
        pass


def test_isolated_keeps_a_total_per_partition(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "isolated.py", tmp_path)
    with running("python isolated.py worker -l info", tmp_path, "total", count=12) as done:
        pass
    totals: dict[int, list[int]] = {}
    for partition, total in re.findall(r"partition (\d+): total (\d+)", done.output):
        totals.setdefault(int(partition), []).append(int(total))
    # Each partition's copy adds up its own payments only: its totals only grow.
    assert totals and all(t == sorted(t) for t in totals.values())
    assert done.returncode == 0, done.output


def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "testing", tmp_path / "testing")
    output = run("python -m pytest -q -p no:cacheprovider", tmp_path / "testing", timeout=120)
    assert "2 passed" in output


def test_the_service_runs_its_task_and_timer_and_stops_with_the_worker(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "service.py", tmp_path)
    with running("python service.py worker -l info", tmp_path, "polled", count=2) as done:
        pass
    assert done.returncode == 0, done.output
    assert "[^PriceFeed]: price feed starting" in done.output
    [stopped] = re.findall(r"price feed stopped after (\d+) prices", done.output)
    assert int(stopped) >= 2
    assert "Traceback" not in done.output
