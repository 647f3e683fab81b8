"""The cost of the default sensors and /metrics: cases a, b and d with them and without.

    python -m bench.sensors [--events 200000] [--runs 3] [--cases a,b,d]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the Kafka of ``scripts/kafka`` (started if
it is not running, and then stopped). The data is that of bench/kafka.py, produced once.
Each case runs as in ``python -m bench`` (a: a stateless agent over Records; b: a Table
sum per key, RocksDB store, changelog on; d: a tumbling-window count per key), in two
settings:

  on   the defaults: ``app.monitor`` installed, and ``/metrics`` rendered once a second
       (``faust.sensors.prometheus.render_metrics(app)`` in this process, as the web
       server's handler does) while the case runs
  off  ``sensors_enabled=False`` (``FAUST_SENSORS_ENABLED=0``): no Monitor, no renders

Each run is an on/off block per case, in the order off, on, on, off (the next run starts
with on), so a slow drift of this shared machine weighs on both sides alike. Rates are
events per CPU-second of this process from the first event to the last, renders
included; the cost printed is ``1 - median(on / off)`` over the adjacent pairs of runs.

What "off" still runs: the counters the code keeps inline whatever the setting (a table's
``gets``/``sets``, the producer's per-topic ``initiated``) and the per-batch calls into an
empty sensor list. Compare with the commit before the sensors for those (bench/RESULTS.md).

    python -m bench.sensors --account [--events 200000] [--cases a,b,d]

runs each case once with sensors on and adds up the CPU time spent inside the sensors'
entry points on the data path (every ``SensorDelegate`` hook, a queue's ``StreamStats``
settling, the Monitor's sampling, each /metrics render), against the run's CPU time: the
cost measured directly, which the machine's noise does not hide as it hides a 1-2%
difference between whole runs. The inline counters (one ``+= 1`` per table read or
write) are timed apart with ``timeit`` and added per event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import faust
from faust.sensors.base import SensorDelegate, StreamStats
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import render_metrics

from . import cases, kafka, tables

CASES = ("a", "b", "d")
TITLES = {
    "a": "stateless agent over Records",
    "b": "Table sum per key, RocksDB, changelog",
    "d": "tumbling(60) window count per key",
}
#: The cost the issue allows (sensors and /metrics on, against off).
LIMIT = 0.05
#: How often /metrics is rendered while a case runs with sensors on: a Prometheus scrape
#: is usually every 15-60 s; once a second is the dashboard's pace and a stricter test.
RENDER_INTERVAL = 1.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def render_every(app: faust.App, interval: float, renders: list[float]) -> None:
    """Render the app's /metrics body every ``interval`` seconds (until cancelled);
    ``renders``: [how many, their CPU seconds]."""
    while True:
        # The first right away: a run of this size may take less than a second.
        began = time.process_time()
        body, _ = render_metrics(app)
        renders[1] += time.process_time() - began
        renders[0] += 1
        if not body:
            raise SystemExit("render_metrics returned an empty body")
        await asyncio.sleep(interval)


def runner(case: str, bootstrap: str, topic: str, events: int, datadir: str) -> Awaitable[float]:
    if case == "a":
        return kafka.faust_run(bootstrap, topic, events)
    if case == "b":
        return b_sum(bootstrap, topic, events, datadir)
    return cases.window_count(bootstrap, topic, events, datadir)


async def b_sum(bootstrap: str, topic: str, events: int, datadir: str) -> float:
    rate, sums, _ = await tables.kafka_faust_sum(bootstrap, topic, events, datadir)
    tables.check_sums("b: faust table (Kafka)", sums, tables.expected_sums(events))
    return rate


async def one(
    case: str, on: bool, bootstrap: str, topic: str, events: int, datadir: str
) -> tuple[float, list[float]]:
    """One run of ``case`` with sensors ``on`` or off; returns events/s and the
    renders' [count, CPU seconds]."""
    os.environ["FAUST_SENSORS_ENABLED"] = "1" if on else "0"
    renders = [0.0, 0.0]
    started: list[asyncio.Task[None]] = []

    def on_started(app: faust.App) -> None:
        if on:
            assert app.monitor is not None, "sensors on, but the app has no Monitor"
            started.append(asyncio.ensure_future(render_every(app, RENDER_INTERVAL, renders)))
        else:
            assert app.monitor is None, "sensors off, but the app has a Monitor"

    kafka.ON_APP_STARTED = on_started
    try:
        rate = await runner(case, bootstrap, topic, events, datadir)
    finally:
        kafka.ON_APP_STARTED = None
        for task in started:
            task.cancel()
        os.environ.pop("FAUST_SENSORS_ENABLED", None)
    return rate, renders


async def run_all(
    args: argparse.Namespace, bootstrap: str, tmp: str
) -> dict[str, dict[str, list[float]]]:
    topic = f"bench-sensors-readings-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    await kafka.produce(bootstrap, topic, args.events)
    say(f"(produced {args.events:,} readings in {time.perf_counter() - began:.1f} s)")
    results: dict[str, dict[str, list[float]]] = {
        case: {"on": [], "off": [], "renders": [], "render_cpu": []} for case in args.cases
    }
    counter = 0
    try:
        for run in range(args.runs):
            for case in args.cases:
                order = [False, True, True, False] if run % 2 == 0 else [True, False, False, True]
                for on in order:
                    counter += 1
                    datadir = os.path.join(tmp, f"{case}-{counter}")
                    rate, renders = await one(case, on, bootstrap, topic, args.events, datadir)
                    results[case]["on" if on else "off"].append(rate)
                    if on:
                        results[case]["renders"].append(renders[0])
                        results[case]["render_cpu"].append(renders[1])
                    say(
                        f"[run {run + 1}/{args.runs}] {case} sensors {'on ' if on else 'off'}: "
                        f"{rate:,.0f} ev/s" + (f" ({renders[0]:.0f} renders)" if on else "")
                    )
                    shutil.rmtree(datadir, ignore_errors=True)
    finally:
        await tables.delete_topics(bootstrap, [topic])
    return results


def report(args: argparse.Namespace, results: dict[str, dict[str, list[float]]]) -> list[str]:
    """The cost of a case is ``1 - median(on/off)`` over its adjacent pairs of runs (each
    on-run over the off-run next to it): on this shared machine whole runs move by 10-30%
    while a pair, run back to back, shares most of the drift."""
    lines = [
        f"python -m bench.sensors: {args.events:,} events, {args.runs} run(s) of off/on/on/off "
        "per case; events per CPU-second, medians",
        "cost: 1 - the median of the on/off ratios of adjacent runs",
        "",
        f"{'case':<5} {'what':<38} {'sensors off':>14} {'sensors on':>14} {'on/off':>7}  "
        f"{'cost':>5}  result (<= {LIMIT:.0%})",
    ]
    for case, res in results.items():
        off, on = statistics.median(res["off"]), statistics.median(res["on"])
        pairs = statistics.median(a / b for a, b in zip(res["on"], res["off"], strict=True))
        cost = 1 - pairs
        lines.append(
            f"{case:<5} {TITLES[case]:<38} {off:>9,.0f} ev/s {on:>9,.0f} ev/s {pairs:>7.3f}  "
            f"{cost:>5.1%}  {'met' if cost <= LIMIT else 'NOT MET'}"
        )
    lines.append("")
    for case, res in results.items():
        ratios = [a / b for a, b in zip(res["on"], res["off"], strict=True)]
        renders = sum(res["renders"])
        per_render = sum(res["render_cpu"]) / renders * 1000 if renders else 0.0
        lines.append(
            f"{case}: on/off per pair "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + f"; {renders:.0f} /metrics renders in the on-runs, {per_render:.2f} ms CPU each"
        )
    return lines


# -- --account: the sensors' CPU time measured inside them ----------------------------------


def accounted_entry_points() -> list[tuple[type, str]]:
    """Where sensor work starts on the data path: each hook reaches the sensors through
    one of these (nested calls are counted once, at the outermost)."""
    hooks = [
        (SensorDelegate, name)
        for name in vars(SensorDelegate)
        if name.startswith("on_") and callable(getattr(SensorDelegate, name))
    ]
    return [*hooks, (StreamStats, "delivered"), (StreamStats, "settle"), (Monitor, "sample")]


class Accountant:
    """Adds up the CPU time spent inside the wrapped functions (outermost calls only)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0
        self._saved: list[tuple[type, str, Any]] = []

    def install(self) -> None:
        for owner, name in accounted_entry_points():
            original = owner.__dict__[name]
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original))

    def uninstall(self) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)
        self._saved.clear()

    def _wrap(self, function: Any) -> Any:
        clock = time.process_time

        def accounted(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            began = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += clock() - began
                self.calls += 1
                self._depth -= 1

        return accounted


def counter_cost() -> float:
    """Seconds of one inline ``obj.count += 1`` on an object like a table (timeit)."""
    import timeit

    class Table:
        def __init__(self) -> None:
            self.gets = 0

    table = Table()
    number = 2_000_000
    best = min(timeit.repeat("t.gets += 1", "", globals={"t": table}, number=number, repeat=5))
    empty = min(timeit.repeat("pass", number=number, repeat=5))
    return max(best - empty, 0.0) / number


#: Inline counter increments per event of each case: a (none), b (table[key] += v: a read
#: and a write), d (the windowed += on one tumbling range: a read and a write).
COUNTERS_PER_EVENT = {"a": 0, "b": 2, "d": 2}


async def account(args: argparse.Namespace, bootstrap: str, tmp: str) -> list[str]:
    topic = f"bench-sensors-readings-{uuid.uuid4().hex[:8]}"
    await kafka.produce(bootstrap, topic, args.events)
    per_counter = counter_cost()
    lines = [
        f"python -m bench.sensors --account: {args.events:,} events, sensors on, /metrics "
        "rendered once a second; CPU seconds of the run (first event to last) against those",
        "spent inside the sensors' entry points and the renders, plus the inline counters "
        f"({per_counter * 1e9:.1f} ns per increment, timeit)",
        "",
        f"{'case':<5} {'events/s':>10} {'run CPU s':>10} {'hooks s':>9} {'calls':>7} "
        f"{'renders s':>10} {'counters s':>11} {'cost':>6}",
    ]
    try:
        for case in args.cases:
            accountant = Accountant()
            accountant.install()
            try:
                rate, renders = await one(
                    case, True, bootstrap, topic, args.events, os.path.join(tmp, f"acc-{case}")
                )
            finally:
                accountant.uninstall()
            run_cpu = args.events / rate
            counters = COUNTERS_PER_EVENT[case] * per_counter * args.events
            # The renders ran inside the timed window only while it lasted; the hooks'
            # time includes the start-up and the stop (an upper bound for the window).
            cost = (accountant.seconds + renders[1] + counters) / run_cpu
            lines.append(
                f"{case:<5} {rate:>10,.0f} {run_cpu:>10.3f} {accountant.seconds:>9.4f} "
                f"{accountant.calls:>7,} {renders[1]:>10.4f} {counters:>11.4f} {cost:>6.2%}"
            )
            say(lines[-1])
    finally:
        await tables.delete_topics(bootstrap, [topic])
    return lines


def parse_cases(text: str) -> list[str]:
    wanted = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"cases: choose from {','.join(CASES)}, not {text!r}")
    return [c for c in CASES if c in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sensors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="events per case")
    parser.add_argument("--runs", type=int, default=3, help="off/on/on/off blocks per case")
    parser.add_argument("--cases", type=parse_cases, default=list(CASES), help="e.g. a,b")
    parser.add_argument(
        "--account", action="store_true", help="measure the time inside the sensors instead"
    )
    args = parser.parse_args(argv)
    if min(args.events, args.runs) < 1:
        parser.error("--events and --runs must be >= 1")
    bootstrap, started = kafka.bring_up_kafka()
    tmp = tempfile.mkdtemp(prefix="faust-bench-sensors-")
    try:
        faust.worker.install_uvloop()
        faust.worker.tune_gc()
        if args.account:
            lines = asyncio.run(account(args, bootstrap, tmp))
        else:
            lines = report(args, asyncio.run(run_all(args, bootstrap, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            subprocess.run([sys.executable, str(kafka.REPO / "scripts" / "kafka"), "down"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
