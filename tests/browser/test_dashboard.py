"""The dashboard in a real headless browser, against a running ``faust worker``.

The worker runs on the embedded broker with a timer feeding two agents (one counts words
into a table, one raises on every tenth number, so there are errors and dead letters).
The test loads ``/dashboard``, waits for the data, checks the numbers the page shows
against the worker's JSON endpoint and ``/metrics`` read just before and just after
(counts only grow), checks the chart drew points, saves a screenshot, and stops the
worker to see the page say "Disconnected" (and "Live" again when a worker is back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .pages import (
    COLOURED_PIXELS,
    PAGE_TIMEOUT,
    PARTITIONS,
    READ_PAGE,
    TABLE_KEYS,
    WORKER_APP,
    Samples,
    Worker,
    free_port,
    save_full_page,
    status,
    wait_for,
)


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    (tmp_path / "dashapp.py").write_text(WORKER_APP)
    return tmp_path


@pytest.fixture
def worker(worker_dir: Path) -> Iterator[Worker]:
    running = Worker(worker_dir, free_port())
    try:
        running.start()
        yield running
    finally:
        running.stop()


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
    for topic in ("dash-browser-words", "dash-browser-numbers"):
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

    # Dark when the system is: the page follows prefers-color-scheme.
    assert background_luminance(browser) > 0.8
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    assert background_luminance(browser) < 0.2
    dark = artifacts / "dashboard-dark.png"
    save_full_page(browser, dark)
    print(f"dark screenshot: {dark}")

    # Legible at a small laptop's width: nothing runs off the side.
    for width in (1024, 800):
        browser.set_window_size(width, 900)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow}px wider than a {width}px window"
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


def background_luminance(browser: Any) -> float:
    """The page background's relative brightness, 0 (black) to 1 (white)."""
    colour = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(c) for c in colour[colour.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


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
