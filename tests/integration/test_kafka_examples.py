"""The examples that need more than one process, run as their docstrings say, on Kafka.

``examples/web_client.py``: a worker process runs the agent, a plain aiohttp server
(not a worker) sends orders to it and asks it for results. ``examples/word_count.py``:
two workers, each answering ``/count/{word}/`` for every word, the other's too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.test_readme import REPO, free_port, run, running

EXAMPLES = REPO / "examples"


def _example(tmp_path: Path, name: str) -> Path:
    shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


async def test_web_client_asks_the_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    project = _example(tmp_path, "web_client.py")
    broker = f"kafka://{kafka_bootstrap.split(',')[0]}"
    port = free_port()
    base = f"http://{socket.gethostname()}:{port}"
    worker_env = {"FAUST_BROKER": broker, "FAUST_WEB_PORT": str(free_port())}
    with running(
        "faust -A web_client worker -l info", project, "Worker ready", timeout=120, **worker_env
    ) as worker:
        with running(
            f"python web_client.py --port {port}",
            project,
            "Running on",
            timeout=60,
            FAUST_BROKER=broker,
        ) as web:
            async with aiohttp.ClientSession() as session:
                order = {"item": "book", "quantity": 3, "unit_price": 12.5}
                async with session.post(f"{base}/orders/", json=order) as response:
                    assert response.status == 200, await response.text()
                    receipt = await response.json()
                assert receipt["item"] == "book" and receipt["total"] == 33.75

                later = {"item": "pen", "quantity": 1, "unit_price": "2"}
                async with session.post(f"{base}/orders/later/", json=later) as response:
                    assert response.status == 202, await response.text()
                    queued = await response.json()
                assert queued["topic"] == "web-client-orders" and queued["offset"] >= 0

                # Same key, same partition: answered only after the queued one is done.
                async with session.post(f"{base}/orders/", json={**later, "quantity": 2}) as r:
                    assert r.status == 200 and (await r.json())["total"] == 4.0

                for body in (
                    "not json",
                    "[1, 2]",
                    '{"item": "pen"}',
                    '{"item": "pen", "quantity": "many", "unit_price": 1}',
                ):
                    async with session.post(f"{base}/orders/", data=body) as response:
                        assert response.status == 400, body
                        assert "error" in await response.json()
    assert web.returncode == 0, web.output
    assert worker.returncode == 0, worker.output
    assert "Traceback" not in web.output + worker.output
    # The result was worked out by the worker process, not by the web server.
    [pid] = re.findall(r"pid\s+(\d+)", worker.output)[:1]
    assert receipt["handled_by"] == int(pid)
    assert "Processed order: 3 x book = 33.75" in worker.output
    assert "Processed order: 1 x pen = 2.00" in worker.output


def _words_on_every_partition(project: Path) -> list[str]:
    """New words (a run of the test never counts another run's), at least one on each
    of the example's table partitions: whichever worker owns which, each owns some."""
    spec = importlib.util.spec_from_file_location("word_count_example", project / "word_count.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    router, counts = example.app.router, example.counts
    run_id = uuid.uuid4().hex[:8]
    words: dict[int, str] = {}
    i = 0
    while len(words) < counts.partitions:
        word = f"w{run_id}x{i}"
        words.setdefault(router.table_partition(counts, word).partition, word)
        i += 1
    return list(words.values())


async def _count(session: aiohttp.ClientSession, url: str) -> tuple[int, Any, str | None]:
    async with session.get(url) as response:
        body = await response.json()
        return response.status, body, response.headers.get("X-Faust-Served-By")


async def test_word_count_workers_answer_for_each_others_words(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    project = _example(tmp_path, "word_count.py")
    broker = f"kafka://{kafka_bootstrap.split(',')[0]}"
    ports = [free_port(), free_port()]
    urls = [f"http://{socket.gethostname()}:{port}" for port in ports]
    words = _words_on_every_partition(project)
    # Each word a different number of times: the counts tell the words apart.
    expected = {word: i + 1 for i, word in enumerate(words)}
    sentence = " ".join(word for word, n in expected.items() for _ in range(n))
    command = "faust -A word_count worker -l info --web-port {}"
    with (
        running(
            command.format(ports[0]), project, "Worker ready", timeout=120, FAUST_BROKER=broker
        ) as first,
        running(
            command.format(ports[1]), project, "Worker ready", timeout=120, FAUST_BROKER=broker
        ) as second,
    ):
        run(f"faust -A word_count send sentences '\"{sentence}\"'", project, FAUST_BROKER=broker)
        served_by: dict[str, set[str | None]] = {}
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 90
            while True:
                answers = {
                    (word, url): await _count(session, f"{url}/count/{word}/")
                    for word in words
                    for url in urls
                }
                done = all(
                    status == 200 and body["count"] == expected[word]
                    for (word, _), (status, body, _) in answers.items()
                )
                if done:
                    break
                assert time.monotonic() < deadline, f"counts never settled: {answers}"
                await asyncio.sleep(0.5)
        for (word, _), (_, _, by) in answers.items():
            served_by.setdefault(word, set()).add(by)
    # Both workers answered for every word, each time from the word's one owner...
    assert all(len(by) == 1 and by <= set(urls) for by in served_by.values()), served_by
    # ...and each worker owns some of them: each passed requests on to the other.
    assert {by for owners in served_by.values() for by in owners} == set(urls), served_by
    for worker in (first, second):
        assert worker.returncode == 0, worker.output
        assert "Traceback" not in worker.output
