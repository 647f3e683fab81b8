"""The dashboard in a real headless browser, against a running ``faust worker``.

The worker runs on the embedded broker with a timer feeding two agents (one counts words
into a table, one raises on every tenth number, so there are errors and dead letters).
The test loads ``/dashboard``, waits for the data, checks the numbers the page shows
against the worker's JSON endpoint and ``/metrics`` read just before and just after
(counts only grow), checks the chart drew points, saves a screenshot, and stops the
worker to see the page say "Disconnected" (and "Live" again when a worker is back).
"""

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

WORKER_APP = """
import faust

app = faust.App("dash-browser", topic_partitions=4, agent_restart_backoff=0.01)
words = app.topic("dash-words", key_type=str, value_type=str)
numbers = app.topic("dash-numbers", key_type=str, value_type=int)
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: ``/metrics`` parsed: (sample name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Worker:
    """A ``faust -A dashapp worker`` process serving its web pages on ``port``."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = directory / f"worker-{port}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["FAUST_WEB_PORT"] = str(self.port)
        env["FAUST_WEB_HOST"] = "127.0.0.1"
        env["FAUST_DATADIR"] = str(self.directory / "dash-browser-data")
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


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    (tmp_path / "dashapp.py").write_text(WORKER_APP)
    return tmp_path


@pytest.fixture
def worker(worker_dir: Path) -> Iterator[Worker]:
    running = Worker(worker_dir, _free_port())
    try:
        running.start()
        yield running
    finally:
        running.stop()


def wait_for(browser: Any, condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` (with the page's
    status and console) if it is not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            status = browser.find_element("id", "status").text
            pytest.fail(f"the dashboard did not show {what} within {timeout}s (status {status!r})")
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
    topic: row.dataset.topic, partition: Number(row.dataset.partition),
    committed: value(row.querySelector('[data-field=committed]')),
    end: value(row.querySelector('[data-field=end]')),
    lag: value(row.querySelector('[data-field=lag]')),
  });
}
const workers = [];
for (const item of document.querySelectorAll('#workers li[data-worker]')) {
  workers.push({url: item.dataset.worker, partitions: Number(item.dataset.partitions)});
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


@pytest.mark.timeout(600)  # a first run installs chromium
def test_dashboard_shows_the_workers_numbers(
    browser: Any, worker: Worker, worker_dir: Path, artifacts: Path
) -> None:
    started = time.monotonic()
    browser.get(worker.url + "/dashboard")
    # Data shown, events counted, dead letters written and the chart has a line.
    wait_for(
        browser,
        lambda: (
            (page := browser.execute_script(READ_PAGE))["status"] == "live"
            and int(page["totalEvents"] or 0) > 0
            and int(page["deadLettered"] or 0) > 0
            and page["chartPoints"] >= 8
        ),
        "events, dead letters and chart points",
        PAGE_TIMEOUT,
    )

    before, metrics_before = worker.data(), worker.metrics()
    # Read the page once it rendered a response the worker made after `before`.
    page = wait_for(
        browser,
        lambda: (p := browser.execute_script(READ_PAGE))["time"] > before["time"] and p,
        "a fresh response",
        PAGE_TIMEOUT,
    )
    after, metrics_after = worker.data(), worker.metrics()

    # Per agent: events and errors between the two readings of the JSON endpoint.
    assert set(page["agents"]) == {a["name"] for a in after["agents"]}
    earlier = {a["name"]: a for a in before["agents"]}
    later = {a["name"]: a for a in after["agents"]}
    for name, shown in page["agents"].items():
        assert earlier[name]["events"] <= int(shown["events"]) <= later[name]["events"], name
    assert int(page["agents"]["dashapp.count"]["events"]) > 0
    assert int(page["errorCounts"]["agent"]) > 0

    # The same counts in /metrics.
    check_against_metrics(page, metrics_before, metrics_after)

    # Totals, errors and dead letters.
    for key, field in (("totalErrors", "total"), ("deadLettered", "dead_lettered")):
        assert before["errors"][field] <= int(page[key]) <= after["errors"][field], key
    for kind, shown_count in page["errorCounts"].items():
        assert (
            before["errors"]["counts"][kind] <= int(shown_count) <= after["errors"]["counts"][kind]
        ), kind
    assert page["recentErrors"] > 0

    # The table: every word counted, recovered.
    assert page["tables"] == {"word-counts": {"size": str(TABLE_KEYS), "state": "recovered"}}

    # This worker owns every partition of both topics; lag is end - committed.
    assert [w["url"] for w in page["workers"]] == [after["app"]["url"]]
    shown_parts = {(p["topic"], p["partition"]) for p in page["partitions"]}
    for topic in ("dash-words", "dash-numbers"):
        assert {(topic, p) for p in range(PARTITIONS)} <= shown_parts
    for row in page["partitions"]:
        if row["committed"] not in (None, ""):
            assert int(row["lag"]) == int(row["end"]) - int(row["committed"]) >= 0, row

    # The chart drew lines in the series colours.
    assert page["chartPoints"] >= 8
    assert browser.execute_script(COLOURED_PIXELS) > 100

    # The script ran without an error.
    problems = [e for e in browser.get_log("browser") if e.get("source") == "javascript"]
    assert not problems, problems

    screenshot = artifacts / "dashboard.png"
    save_full_page(browser, screenshot)
    print(f"\ndashboard screenshot: {screenshot}")

    print(f"browser test took {time.monotonic() - started:.1f}s after the worker started")


@pytest.mark.timeout(600)  # a first run installs chromium
def test_dashboard_says_disconnected_and_reconnects(
    browser: Any, worker: Worker, worker_dir: Path, artifacts: Path
) -> None:
    browser.get(worker.url + "/dashboard")
    wait_for(browser, lambda: status(browser) == "live", '"Live"', PAGE_TIMEOUT)

    # The worker goes away: the page says so, and keeps retrying.
    worker.stop()
    wait_for(browser, lambda: status(browser) == "disconnected", '"Disconnected"', PAGE_TIMEOUT)
    assert browser.find_element("id", "status").text == "Disconnected"
    assert "retrying" in browser.find_element("id", "updated").text
    screenshot = artifacts / "dashboard-disconnected.png"
    browser.save_screenshot(str(screenshot))
    print(f"\ndisconnected screenshot: {screenshot}")

    # A worker on the same address again: live without reloading the page.
    again = Worker(worker_dir, worker.port)
    try:
        again.start()
        wait_for(browser, lambda: status(browser) == "live", '"Live" again', PAGE_TIMEOUT)
    finally:
        again.stop()


def save_full_page(browser: Any, path: Path) -> None:
    """A screenshot of the whole page at laptop width (the window grown to fit it)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, max(900, int(height) + 120))
    browser.save_screenshot(str(path))


def status(browser: Any) -> str:
    return str(browser.find_element("id", "status").get_attribute("data-state"))


def check_against_metrics(page: dict[str, Any], before: Samples, after: Samples) -> None:
    """The counts shown lie between ``/metrics`` read before and after the page's
    response; the table's keys equal ``faust_table_keys``."""

    def between(sample: str, shown: Any, **labels: str) -> None:
        key = (sample, tuple(sorted(labels.items())))
        assert key in after, f"{key} not in /metrics"
        assert before.get(key, 0) <= int(shown) <= after[key], (key, shown)

    for name, shown in page["agents"].items():
        between("faust_agent_events_out_total", shown["events"], agent=name)
    for kind in ("decode", "agent", "send", "dead_lettered"):
        between("faust_errors_total", page["errorCounts"][kind], kind=kind)
    between("faust_errors_total", page["deadLettered"], kind="dead_lettered")
    for name, table in page["tables"].items():
        assert after[("faust_table_keys", (("table", name),))] == int(table["size"])
    # Committed offsets only grow too.
    for row in page["partitions"]:
        if row["committed"] not in (None, ""):
            labels = {"topic": row["topic"], "partition": str(row["partition"])}
            between("faust_consumer_committed_offset", row["committed"], **labels)
