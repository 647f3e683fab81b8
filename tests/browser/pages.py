"""Helpers of the dashboard's browser tests: a ``faust worker`` process to look at, and
what the page shows, read in one pass of the browser."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

WORKER_APP = """
import os

import faust

# DASH_APP_ID names the app and its topics (a fresh one per test on a shared Kafka).
APP_ID = os.environ.get("DASH_APP_ID", "dash-browser")
app = faust.App(APP_ID, topic_partitions=4, agent_restart_backoff=0.01)
words = app.topic(f"{APP_ID}-words", key_type=str, value_type=str)
numbers = app.topic(f"{APP_ID}-numbers", key_type=str, value_type=int)
counts = app.Table("word-counts", default=int)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]
sent = [0]


@app.agent(words)
async def count(stream):
    async for word in stream:
        counts[word] += 1


@app.agent(numbers, retries=0)
async def check(stream):
    async for n in stream:
        if n % 10 == 0:
            raise ValueError(f"{n} is a multiple of ten")


@app.timer(0.05)
async def feed():
    for word in WORDS:
        await words.send(key=word, value=word)
    sent[0] += 1
    await numbers.send(key=str(sent[0]), value=sent[0])
"""

#: What the worker's table holds once every word was counted.
TABLE_KEYS = 5
PARTITIONS = 4
WORKER_START_TIMEOUT = 60.0
PAGE_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: ``/metrics`` parsed: (sample name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Worker:
    """A ``faust -A dashapp worker`` process (``dashapp.py`` in ``directory``) serving
    its web pages on ``port``; ``env`` is added to its environment."""

    def __init__(self, directory: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.port = port
        self.env = env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.log = directory / f"worker-{port}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["FAUST_WEB_PORT"] = str(self.port)
        env["FAUST_WEB_HOST"] = "127.0.0.1"
        env["FAUST_WEB_BIND"] = "127.0.0.1"
        # One data directory per worker (a worker locks its own).
        env["FAUST_DATADIR"] = str(self.directory / f"data-{self.port}")
        env.update(self.env)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", "dashapp", "worker", "-l", "info"],
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"the worker exited ({self.proc.returncode}):\n{self.output()}")
            try:
                if self.data()["app"]["state"] == "running":
                    return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the worker's dashboard did not answer:\n{self.output()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return bytes(response.read())

    def data(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/dashboard/data.json")))

    def metrics(self) -> Samples:
        """``/metrics`` parsed by prometheus-client: (sample name, labels) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        samples = {}
        for family in text_string_to_metric_families(self.get("/metrics").decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def wait_for(browser: Any, condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` (with the page's
    status and console) if it is not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = browser.execute_script(READ_PAGE)
            pytest.fail(f"the dashboard did not show {what} within {timeout}s; it shows {shown}")
        time.sleep(0.1)


# One pass over the page, so every number comes from the same rendering of one response.
READ_PAGE = """
const value = (node) => node ? node.dataset.value : null;
const agents = {};
for (const row of document.querySelectorAll('#agents tr[data-agent]')) {
  agents[row.dataset.agent] = {
    events: value(row.querySelector('[data-field=events]')),
  };
}
const tables = {};
for (const row of document.querySelectorAll('#tables tr[data-table]')) {
  tables[row.dataset.table] = {
    size: value(row.querySelector('[data-field=size]')),
    state: row.querySelector('[data-field=state]').dataset.state,
  };
}
const partitions = [];
for (const row of document.querySelectorAll('#partitions tr[data-topic]')) {
  partitions.push({
    topic: row.dataset.topic, partition: Number(row.dataset.partition), worker: row.dataset.worker,
    committed: value(row.querySelector('[data-field=committed]')),
    end: value(row.querySelector('[data-field=end]')),
    lag: value(row.querySelector('[data-field=lag]')),
  });
}
const workers = [];
for (const item of document.querySelectorAll('#workers li[data-worker]')) {
  workers.push({
    url: item.dataset.worker, partitions: Number(item.dataset.partitions),
    reachable: item.dataset.reachable === 'true',
  });
}
const errorCounts = {};
for (const chip of document.querySelectorAll('#error-counts [data-kind]')) {
  errorCounts[chip.dataset.kind] = value(chip.querySelector('[data-value]'));
}
const canvas = document.getElementById('throughput-chart');
return {
  time: Number(document.body.dataset.time),
  status: document.getElementById('status').dataset.state,
  totalEvents: value(document.getElementById('total-events')),
  totalErrors: value(document.getElementById('total-errors')),
  deadLettered: value(document.getElementById('total-dead-lettered')),
  agents, tables, partitions, workers, errorCounts,
  chartPoints: Number(canvas.dataset.points),
  recentErrors: document.querySelectorAll('#recent-errors tbody tr[data-kind]').length,
};
"""

# Pixels of the chart's canvas that are drawn in a series colour (not background, grid
# or axis text, which are grey): proof that lines were drawn, not just counted.
COLOURED_PIXELS = """
const canvas = document.getElementById('throughput-chart');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let coloured = 0;
for (let i = 0; i < data.length; i += 4) {
  const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
  if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
}
return coloured;
"""


def save_full_page(browser: Any, path: Path) -> None:
    """A screenshot of the whole page at laptop width (the window grown to fit it)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, max(900, int(height) + 120))
    browser.save_screenshot(str(path))


def status(browser: Any) -> str:
    return str(browser.find_element("id", "status").get_attribute("data-state"))
