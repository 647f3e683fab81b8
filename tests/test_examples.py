"""Every example in examples/ runs as its docstring says.

Those that fit in one process run here, on the embedded broker; those that need several
processes (which share events only through Kafka) run in
tests/integration/test_kafka_examples.py.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import aiohttp

from tests.integration import test_kafka_examples
from tests.test_readme import REPO, free_port, running

EXAMPLES = REPO / "examples"

#: Each example and the test that runs it.
RUN_BY = {
    "hello.py": "tests/test_readme.py (the quickstart)",
    "word_count.py": "test_word_count_on_one_worker, and with two workers on Kafka",
    "web_client.py": "tests/integration/test_kafka_examples.py",
}


def test_every_example_is_run_by_a_test() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUN_BY)
    assert hasattr(test_kafka_examples, "test_web_client_asks_the_worker")
    assert hasattr(test_kafka_examples, "test_word_count_workers_answer_for_each_others_words")


async def test_word_count_on_one_worker(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "word_count.py", tmp_path)
    port = free_port()
    base = f"http://localhost:{port}"
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
