"""The examples that need more than one process, run as their docstrings say, on Kafka.

``examples/web_client.py``: a worker process runs the agent, a plain aiohttp server
(not a worker) sends orders to it and asks it for results.
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import aiohttp

from tests.test_readme import REPO, running

EXAMPLES = REPO / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _example(tmp_path: Path, name: str) -> Path:
    shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


async def test_web_client_asks_the_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    project = _example(tmp_path, "web_client.py")
    broker = f"kafka://{kafka_bootstrap.split(',')[0]}"
    port = _free_port()
    base = f"http://localhost:{port}"
    worker_env = {"FAUST_BROKER": broker, "FAUST_WEB_PORT": str(_free_port())}
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
