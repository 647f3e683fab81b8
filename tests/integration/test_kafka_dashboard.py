"""The dashboard of a two-worker group on real Kafka, in a real headless browser.

Two ``faust worker`` processes of one group share the topics' partitions. Worker one's
``/dashboard`` lists both workers and the lag of all eight partitions, each row naming
the worker that reads it (asked by worker one for its own); when worker two stops, the
page shows worker one reading every partition after the rebalance.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import artifacts, browser, chromium  # noqa: F401 - fixtures
from tests.browser.pages import (
    PARTITIONS,
    READ_PAGE,
    WORKER_APP,
    Worker,
    free_port,
    save_full_page,
    wait_for,
)

# A rebalance after a worker leaves takes up to the session timeout (6 s here).
REBALANCE_TIMEOUT = 60.0


def owners(data: dict[str, Any]) -> dict[tuple[str, int], str]:
    """(topic, partition) -> the URL of the worker reading it, from data.json."""
    return {
        (topic, part): worker["url"]
        for worker in data["workers"]
        for topic, parts in worker["partitions"].items()
        for part in parts
        if not topic.endswith("-changelog")
    }


@pytest.mark.timeout(600)  # a first run installs chromium
def test_dashboard_of_a_two_worker_group(
    kafka_bootstrap: str,
    browser: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
    artifacts: Path,  # noqa: F811 - the fixture
) -> None:
    app_id = f"dash-kafka-{uuid.uuid4().hex[:8]}"
    topics = [f"{app_id}-words", f"{app_id}-numbers"]
    (tmp_path / "dashapp.py").write_text(WORKER_APP)
    env = {
        "FAUST_BROKER": f"kafka://{kafka_bootstrap}",
        "DASH_APP_ID": app_id,
        "FAUST_BROKER_COMMIT_INTERVAL": "0.5",
        "FAUST_BROKER_SESSION_TIMEOUT": "6",
        "FAUST_BROKER_HEARTBEAT_INTERVAL": "1",
    }
    one = Worker(tmp_path, free_port(), env)
    two = Worker(tmp_path, free_port(), env)
    try:
        one.start()
        two.start()
        browser.get(one.url + "/dashboard")

        def group_shown() -> dict[str, Any] | None:
            page = browser.execute_script(READ_PAGE)
            shown = {w["url"] for w in page["workers"] if w["reachable"]}
            rows = {(p["topic"], p["partition"]) for p in page["partitions"]}
            both = {one.url, two.url}
            if shown != both or {p["worker"] for p in page["partitions"]} != both:
                return None
            expected = {(t, p) for t in topics for p in range(PARTITIONS)}
            committed = all(
                p["committed"] not in (None, "") for p in page["partitions"] if p["end"] != "0"
            )
            # (Besides the app's own topics, those Faust reads: its leader topic on Kafka.)
            ok = rows >= expected and committed and page["chartPoints"] >= 6
            return page if ok and page["status"] == "live" else None

        page = wait_for(browser, group_shown, "both workers and all partitions", REBALANCE_TIMEOUT)
        # Each row names the worker the group gave the partition to.
        assigned = owners(one.data())
        for row in page["partitions"]:
            assert row["worker"] == assigned[row["topic"], row["partition"]], row
            if row["committed"] not in (None, ""):
                assert int(row["lag"]) == int(row["end"]) - int(row["committed"]) >= 0, row
        screenshot = artifacts / "dashboard-kafka-group.png"
        save_full_page(browser, screenshot)
        print(f"\ntwo-worker dashboard screenshot: {screenshot}")

        # Worker two leaves: after the rebalance worker one reads every partition.
        two.stop()

        def taken_over() -> bool:
            page = browser.execute_script(READ_PAGE)
            rows = {(p["topic"], p["partition"]) for p in page["partitions"]}
            return (
                [w["url"] for w in page["workers"]] == [one.url]
                and rows >= {(t, p) for t in topics for p in range(PARTITIONS)}
                and {p["worker"] for p in page["partitions"]} == {one.url}
            )

        started = time.monotonic()
        wait_for(browser, taken_over, "worker one reading every partition", REBALANCE_TIMEOUT)
        print(f"the page showed the takeover {time.monotonic() - started:.1f}s after the stop")
    finally:
        two.stop()
        one.stop()
