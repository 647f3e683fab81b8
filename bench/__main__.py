"""Every benchmark in one command, each Faust figure beside a yardstick from the same run.

    python -m bench [--events 200000] [--runs 3] [--cases a,b,...] [--json]
                    [--restore-records 1000000] [--rss-keys 1000000] [--rss-limit 2048]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the Kafka of ``scripts/kafka`` (started if it
is not running, and then stopped at the end). The data is that of bench/kafka.py: JSON
values of about 100 bytes over 1,000 keys in a topic of 4 partitions, produced once.
Every case runs ``--runs`` times (the runs go round the cases, so slow drifts of a shared
machine spread over all of them) and the table shows medians; a ratio is the median of the
runs' ratios, each Faust run over the yardstick measured right before it.

Cases (Kafka unless said otherwise):

  a    a stateless agent over Records (bench/kafka.py)
  b    a Table sum per key, RocksDB store, changelog on (bench/tables.py)
  c    group_by through a repartition topic, then a Table count (bench/cases.py)
  d    a tumbling-window count per key by message timestamps (bench/cases.py)
  e    consume, transform, send to another topic; ends when every record sent is acked,
       then the output topic is read back and counted (bench/cases.py)
  f    restore a changelog of --restore-records records into RocksDB (bench/tables.py)
  g    end-to-end latency at 5,000 events/s: p50 and p99 (bench/cases.py)
  h    (a) and (b) on the embedded broker (bench/embedded.py, bench/tables.py)
  x    exactly-once: (e) and (b) with processing_guarantee='exactly_once', each beside
       the same case at-least-once in the same run (the yardstick); both clocks run to
       the end of the commit after the last event (under exactly-once: its
       transactions), and the output is read back with read_committed
  rss  peak RSS of a worker process holding --rss-keys keys in a RocksDB table (the
       worker is killed above --rss-limit MB: the machine is shared)

The cost of the default sensors and /metrics (a, b and d with them and without) is
``python -m bench.sensors`` (see bench/sensors.py).

Rates are events per CPU-second of this process (``time.process_time``) from the first
event to the last: the broker's CPU and consumer-group joins are not counted. Restore (f)
is records per wall-clock second (I/O and CPU); latency (g) is wall clock. The yardstick of
a-e is a raw aiokafka loop over the same topic that decodes each value with orjson and
counts per key in a dict, measured right before each Faust run; f's is aiokafka writing
each fetched batch to rocksdict; g's is a raw aiokafka consumer loop fed by the same paced
producer (what the broker and the machine cost without Faust). Every case checks its
result against the data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import faust

from . import cases, embedded, kafka, tables

ALL_CASES = ("a", "b", "c", "d", "e", "f", "g", "h", "x", "rss")
KAFKA_RATIO_CASES = ("a", "b", "c", "d", "e", "x")
# Targets on the 2-core benchmark machine (see bench/RESULTS.md).
RATIO_TARGETS = {"a": 0.7, "b": 0.45, "c": 0.3, "d": 0.35, "e": 0.4}
#: Exactly-once over at-least-once, each case at the default commit interval.
EXACTLY_ONCE_TARGET = 0.8
RESTORE_TARGET = 200_000  # records per wall-second
LATENCY_P99_TARGET = 20.0  # ms
EMBEDDED_TARGET = 300_000  # events per CPU-second, (a) on the embedded broker
RSS_TARGET = 250.0  # MB
RESTORE_KEYS = 100_000


@dataclass
class Row:
    case: str
    title: str
    unit: str
    #: ("ratio", x): ratio >= x; (">=", x) / ("<=", x): the value itself; None: no target.
    target: tuple[str, float] | None
    values: list[float] = field(default_factory=list)
    yardsticks: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.extra.setdefault(name, []).append(value)

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    @property
    def yardstick(self) -> float | None:
        return statistics.median(self.yardsticks) if self.yardsticks else None

    @property
    def ratio(self) -> float | None:
        """The median of the runs' ratios: each Faust run over the yardstick measured
        right before it, so that a slow spell of a shared machine hits both sides."""
        if not self.yardsticks or self.unit == "ms":  # latency: lower is better, no ratio
            return None
        return statistics.median(
            value / yardstick
            for value, yardstick in zip(self.values, self.yardsticks, strict=True)
            if yardstick
        )

    def median(self, name: str) -> float:
        return statistics.median(self.extra[name])

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        kind, bound = self.target
        if kind == "ratio":
            ratio = self.ratio
            return ratio is not None and ratio >= bound
        if self.extra.get("limited") and any(self.extra["limited"]):
            return False  # stopped at the limit: the value is only a lower bound
        return self.value >= bound if kind == ">=" else self.value <= bound


@dataclass
class Bench:
    args: argparse.Namespace
    bootstrap: str
    tmp: str
    rows: dict[str, Row] = field(default_factory=dict)
    topic: str = ""
    restore_app: str = ""
    rss_topic: str = ""
    data: list[tuple[bytes, bytes]] = field(default_factory=list)

    def dir(self, name: str) -> str:
        return tables.fresh_dir(self.tmp, name)

    def row(self, case: str, title: str, unit: str, target: tuple[str, float] | None) -> Row:
        if case not in self.rows:
            self.rows[case] = Row(case, title, unit, target)
        return self.rows[case]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the cases ------------------------------------------------------------------------------


async def with_yardstick(bench: Bench, row: Row, faust_run: Callable[[], Awaitable[float]]) -> None:
    events = bench.args.events
    row.yardsticks.append(await kafka.raw_loop(bench.bootstrap, bench.topic, events))
    row.values.append(await faust_run())


async def case_a(bench: Bench, run: int) -> None:
    row = bench.row("a", "stateless agent over Records", "events/s", ("ratio", RATIO_TARGETS["a"]))
    await with_yardstick(
        bench, row, lambda: kafka.faust_run(bench.bootstrap, bench.topic, bench.args.events)
    )


async def case_b(bench: Bench, run: int) -> None:
    row = bench.row(
        "b", "Table sum per key, RocksDB, changelog", "events/s", ("ratio", RATIO_TARGETS["b"])
    )
    events = bench.args.events

    async def faust_sum() -> float:
        rate, sums, sent = await tables.kafka_faust_sum(
            bench.bootstrap, bench.topic, events, bench.dir(f"b-{run}")
        )
        tables.check_sums("b: faust table (Kafka)", sums, tables.expected_sums(events))
        row.add("changelog_records", sent)
        return rate

    await with_yardstick(bench, row, faust_sum)


def faust_case(
    case: str, title: str, run_case: Callable[[str, str, int, str], Awaitable[float]]
) -> Callable[[Bench, int], Awaitable[None]]:
    """A case of bench/cases.py: ``run_case(bootstrap, topic, events, datadir)`` beside
    the yardstick."""

    async def runner(bench: Bench, run: int) -> None:
        row = bench.row(case, title, "events/s", ("ratio", RATIO_TARGETS[case]))
        await with_yardstick(
            bench,
            row,
            lambda: run_case(
                bench.bootstrap, bench.topic, bench.args.events, bench.dir(f"{case}-{run}")
            ),
        )

    return runner


case_c = faust_case("c", "group_by (repartition) + Table count", cases.group_by_count)
case_d = faust_case("d", "tumbling(60) window count per key", cases.window_count)
case_e = faust_case("e", "consume, transform, send (all acked)", cases.transform_send)


async def case_f(bench: Bench, run: int) -> None:
    records = bench.args.restore_records
    keys = min(RESTORE_KEYS, records)
    row = bench.row(
        "f", f"restore {records:,} changelog records [wall]", "records/s", (">=", RESTORE_TARGET)
    )
    wall, cpu = await tables.raw_restore(
        bench.bootstrap, f"{bench.restore_app}-{tables.TABLE}-changelog", records, bench.dir("f")
    )
    row.yardsticks.append(wall)
    wall, cpu, restored = await tables.kafka_faust_restore(
        bench.bootstrap, bench.restore_app, records, keys, bench.dir(f"f-{run}")
    )
    if restored != tables.expected_restore(records, keys):
        raise SystemExit("f: the restored table differs from its changelog")
    row.values.append(wall)
    row.add("cpu_rate", cpu)


async def case_g(bench: Bench, run: int) -> None:
    row = bench.row(
        "g",
        f"latency at {cases.LATENCY_RATE:,} events/s [wall]",
        "ms",
        ("<=", LATENCY_P99_TARGET),
    )
    raw = await cases.raw_latency(bench.bootstrap, bench.args.events)
    row.yardsticks.append(raw["p99_ms"])
    row.add("raw_p50_ms", raw["p50_ms"])
    result = await cases.latency(bench.bootstrap, bench.args.events, bench.dir(f"g-{run}"))
    row.values.append(result["p99_ms"])
    for name in ("p50_ms", "max_ms", "mean_ms", "rate", "timed"):
        row.add(name, result[name])


async def case_h(bench: Bench, run: int) -> None:
    row = bench.row("h.a", "(a) on the embedded broker", "events/s", (">=", EMBEDDED_TARGET))
    row.values.append(await embedded.faust_run(bench.data, 1000 + run))
    row = bench.row("h.b", "(b) on the embedded broker", "events/s", None)
    rate, sums, sent = await tables.embedded_faust_sum(bench.data, 1000 + run, bench.dir("h"))
    tables.check_sums("h: faust table (embedded)", sums, tables.expected_sums(len(bench.data)))
    row.values.append(rate)
    row.add("changelog_records", sent)


async def case_x(bench: Bench, run: int) -> None:
    events = bench.args.events
    target = ("ratio", EXACTLY_ONCE_TARGET)
    row = bench.row("x.e", "(e) exactly-once, over at-least-once", "events/s", target)
    for guarantee, into in (("at_least_once", row.yardsticks), ("exactly_once", row.values)):
        rate = await cases.transform_send(
            bench.bootstrap,
            bench.topic,
            events,
            bench.dir(f"x-e-{guarantee}-{run}"),
            guarantee=guarantee,
            until_committed=True,
        )
        into.append(rate)
    row = bench.row("x.b", "(b) exactly-once, over at-least-once", "events/s", target)
    for guarantee, into in (("at_least_once", row.yardsticks), ("exactly_once", row.values)):
        rate, sums, sent = await tables.kafka_faust_sum(
            bench.bootstrap,
            bench.topic,
            events,
            bench.dir(f"x-b-{guarantee}-{run}"),
            guarantee=guarantee,
            until_committed=True,
        )
        tables.check_sums(f"x: faust table ({guarantee})", sums, tables.expected_sums(events))
        into.append(rate)
        row.add(f"changelog_records_{guarantee}", sent)


async def case_rss(bench: Bench, run: int) -> None:
    keys = bench.args.rss_keys
    row = bench.row("rss", f"peak RSS, worker with {keys:,} RocksDB keys", "MB", ("<=", RSS_TARGET))
    result = await cases.rss_run(
        bench.bootstrap, bench.rss_topic, keys, bench.dir(f"rss-{run}"), bench.args.rss_limit
    )
    row.values.append(result["peak_mb"])
    row.add("rss_mb", result["rss_mb"])
    row.add("limited", float(result["limited"]))


RUNNERS: dict[str, Callable[[Bench, int], Awaitable[None]]] = {
    "a": case_a,
    "b": case_b,
    "c": case_c,
    "d": case_d,
    "e": case_e,
    "f": case_f,
    "g": case_g,
    "h": case_h,
    "x": case_x,
    "rss": case_rss,
}


# -- running --------------------------------------------------------------------------------


async def prepare(bench: Bench, selected: list[str]) -> None:
    args, bootstrap = bench.args, bench.bootstrap
    suffix = uuid.uuid4().hex[:8]
    if any(case in selected for case in KAFKA_RATIO_CASES):
        bench.topic = f"bench-all-readings-{suffix}"
        began = time.perf_counter()
        await kafka.produce(bootstrap, bench.topic, args.events)
        say(f"(produced {args.events:,} readings in {time.perf_counter() - began:.1f} s)")
    if "f" in selected:
        bench.restore_app = f"bench-all-restore-{suffix}"
        records = args.restore_records
        began = time.perf_counter()
        await tables.produce_changelog(
            bootstrap,
            f"{bench.restore_app}-{tables.TABLE}-changelog",
            records,
            min(RESTORE_KEYS, records),
        )
        say(f"(produced a changelog of {records:,} in {time.perf_counter() - began:.1f} s)")
    if "rss" in selected:
        bench.rss_topic = f"bench-all-rss-{suffix}"
        began = time.perf_counter()
        await cases.produce_batched(bootstrap, bench.rss_topic, cases.keyed_readings(args.rss_keys))
        say(f"(produced {args.rss_keys:,} keyed readings in {time.perf_counter() - began:.1f} s)")
    if "h" in selected:
        # orjson returns each value in a 4 KiB buffer; a broker hands out values of their
        # own size, so keep exact-size copies (else 200,000 values hold 800 MB).
        bench.data = [
            (key, memoryview(value).tobytes()) for key, value in embedded.make_data(args.events)
        ]


async def tidy(bench: Bench) -> None:
    topics = [t for t in (bench.topic, bench.rss_topic) if t]
    if topics:
        await tables.delete_topics(bench.bootstrap, topics)
    if bench.restore_app:
        await cases.delete_app_topics(bench.bootstrap, bench.restore_app)


def progress(row: Row) -> str:
    text = f"{row.case}: {number(row.values[-1], row.unit)}"
    if row.yardsticks:
        text += f", yardstick {number(row.yardsticks[-1], row.unit)}"
    return text


async def run_all(bench: Bench, selected: list[str]) -> None:
    await prepare(bench, selected)
    try:
        for run in range(bench.args.runs):
            for case in selected:
                began = time.perf_counter()
                await RUNNERS[case](bench, run)
                took = time.perf_counter() - began
                shown = "; ".join(
                    progress(row) for key, row in bench.rows.items() if key.split(".")[0] == case
                )
                say(f"[run {run + 1}/{bench.args.runs}] {shown} ({took:.1f} s)")
    finally:
        await tidy(bench)


# -- output ---------------------------------------------------------------------------------


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"p99 {value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    short = {"events/s": "ev/s", "records/s": "rec/s"}.get(unit, unit)
    return f"{value:,.0f} {short}"


def target_text(row: Row) -> str:
    if row.target is None:
        return "-"
    kind, bound = row.target
    if kind == "ratio":
        return f"ratio >= {bound:.2f}"
    if row.case == "g":
        return f"p99 <= {bound:g} ms"
    return f"{'>=' if kind == '>=' else '<='} {number(bound, row.unit)}"


def faust_text(row: Row) -> str:
    if row.case == "g":
        return f"p50 {row.median('p50_ms'):.1f} / p99 {row.value:.1f} ms"
    text = number(row.value, row.unit)
    if row.case == "rss" and any(row.extra.get("limited", ())):
        text = ">= " + text
    return text


def header(args: argparse.Namespace, bootstrap: str, started: bool, loop: str) -> list[str]:
    return [
        f"python -m bench: {args.events:,} events (JSON values of ~100 bytes, 1,000 keys, "
        f"{cases.PARTITIONS} partitions), {args.runs} run(s) per case, medians",
        f"Kafka {bootstrap}{' (started for this run)' if started else ''}; Python "
        f"{platform.python_version()}, aiokafka {version('aiokafka')}, {loop}, "
        f"{os.cpu_count()} CPUs",
        "Rates: events per CPU-second of this process, first event to last (broker CPU and "
        "group joins not counted),",
        "except f (records per wall-clock second) and g (wall clock). Yardstick of a-e: raw "
        "aiokafka loop over the same",
        "topic (consume, orjson.loads, count per key in a dict) measured in the same run; "
        "f's: aiokafka -> rocksdict;",
        "g's: a raw aiokafka consumer loop timed like the agent. Ratio: the median of the runs' "
        "ratios (each Faust run",
        "over the yardstick measured right before it).",
    ]


def table(rows: list[Row]) -> list[str]:
    """One line per row; columns are separated by at least two spaces."""
    width = max([len("what")] + [len(row.title) for row in rows])
    lines = [
        f"{'case':<5} {'what':<{width}}  {'faust':>22}  {'yardstick':>13}  {'ratio':>5}  "
        f"{'target':<17}  result",
    ]
    for row in rows:
        ratio = row.ratio
        met = row.met
        lines.append(
            f"{row.case:<5} {row.title:<{width}}  {faust_text(row):>22}  "
            f"{number(row.yardstick, row.unit):>13}  "
            f"{'-' if ratio is None else f'{ratio:.2f}':>5}  {target_text(row):<17}  "
            f"{'-' if met is None else 'met' if met else 'NOT MET'}"
        )
    return lines


def notes(rows: list[Row]) -> list[str]:
    out = []
    for row in rows:
        if row.case == "f":
            out.append(
                f"f: faust restore {row.median('cpu_rate'):,.0f} records per CPU-second; "
                f"{RESTORE_KEYS:,} keys at most, 4 partitions"
            )
        elif row.case == "g":
            out.append(
                f"g: sent at {row.median('rate'):,.0f} events/s by an aiokafka producer in "
                f"this process; {row.median('timed'):,.0f} events timed per run after a "
                f"warm-up; mean {row.median('mean_ms'):.1f} ms, max {row.median('max_ms'):.1f} ms; "
                f"raw consumer p50 {row.median('raw_p50_ms'):.1f} ms"
            )
        elif row.case == "rss":
            limited = any(row.extra.get("limited", ()))
            out.append(
                "rss: VmHWM of a faust.Worker process (python -m bench.cases rss-worker) "
                "after it committed the last key"
                + (" -- stopped at --rss-limit, so only a lower bound" if limited else "")
            )
    met = [r for r in rows if r.met is True]
    unmet = [r.case for r in rows if r.met is False]
    out.append(
        f"targets met: {len(met)} of {len([r for r in rows if r.met is not None])}"
        + (f"; not met: {', '.join(unmet)}" if unmet else "")
    )
    return out


def as_json(bench: Bench, rows: list[Row]) -> dict[str, Any]:
    return {
        "events": bench.args.events,
        "runs": bench.args.runs,
        "bootstrap": bench.bootstrap,
        "python": platform.python_version(),
        "aiokafka": version("aiokafka"),
        "rows": [
            {
                "case": row.case,
                "title": row.title,
                "unit": row.unit,
                "value": row.value,
                "yardstick": row.yardstick,
                "ratio": row.ratio,
                "target": None if row.target is None else list(row.target),
                "met": row.met,
                "runs": row.values,
                "yardstick_runs": row.yardsticks,
                "extra": row.extra,
            }
            for row in rows
        ],
    }


def parse_cases(text: str) -> list[str]:
    wanted = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in ALL_CASES]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown case(s) {', '.join(unknown) or text!r}: choose from {','.join(ALL_CASES)}"
        )
    return [c for c in ALL_CASES if c in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="events per case")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (medians shown)")
    parser.add_argument(
        "--cases", type=parse_cases, default=list(ALL_CASES), help="e.g. a,b,rss (default: all)"
    )
    parser.add_argument(
        "--restore-records", type=int, default=1_000_000, help="changelog records for f"
    )
    parser.add_argument("--rss-keys", type=int, default=1_000_000, help="table keys for rss")
    parser.add_argument(
        "--rss-limit", type=float, default=cases.RSS_LIMIT_MB, help="MB; kill the worker above"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if min(args.events, args.runs, args.restore_records, args.rss_keys) < 1:
        parser.error("--events, --runs, --restore-records and --rss-keys must be >= 1")
    bootstrap, started = kafka.bring_up_kafka()
    tmp = tempfile.mkdtemp(prefix="faust-bench-")
    bench = Bench(args, bootstrap, tmp)
    try:
        loop = "uvloop" if faust.worker.install_uvloop() else "asyncio"
        lines = header(args, bootstrap, started, loop)
        faust.worker.tune_gc()  # the whole process, yardsticks too, as a worker runs
        asyncio.run(run_all(bench, args.cases))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            subprocess.run([sys.executable, str(kafka.REPO / "scripts" / "kafka"), "down"])
    rows = list(bench.rows.values())
    if args.json:
        print(json.dumps(as_json(bench, rows), indent=2))
    else:
        print("\n".join([*lines, "", *table(rows), "", *notes(rows)]))


if __name__ == "__main__":
    main()
