"""``faust -A app status``: the app's consumer group as Kafka sees it.

It asks the brokers, not a worker, so it works with every worker's web server off and
does not join the group (which would start a rebalance): the members with their
host and URL, each partition's owner, committed offset, end offset and lag.

Exit status: 0 when the group has members, 3 when it has none (no worker runs; the
committed offsets are still shown), 1 on an error (the broker is memory://, Kafka
cannot be reached within ``broker_connect_timeout``), 2 for a wrong command line.

``--json`` prints one object, whose fields are only ever added to (``version`` says
which fields there are)::

    {
      "version": 1,
      "app": "word-count",
      "group": "word-count",
      "broker": "kafka://localhost:9092",
      "state": "Stable",        # Kafka's: Stable, PreparingRebalance,
                                # CompletingRebalance, Empty, Dead (unknown group)
      "members": [
        {"member_id": "faust-0c1e...", "client_id": "faust",
         "client_host": "/10.0.0.5", "host": "worker-1",
         "url": "http://worker-1:6066", "leader": true,
         "partitions": [{"topic": "words", "partition": 0}, ...],
         "standbys": [{"topic": "word-count-counts-changelog", "partition": 1}, ...]}
      ],
      "partitions": [
        {"topic": "words", "partition": 0, "kind": "source",   # or "changelog"
         "owner": "faust-0c1e...", "owner_url": "http://worker-1:6066",
         "committed": 1200, "start": 0, "end": 1250, "lag": 50}
      ],
      "lag": 50,                # the sum of the partitions' lag
      "missing_topics": []      # topics of the app that do not exist yet
    }

``owner``/``owner_url`` are null for a partition nobody reads now; ``committed`` is null
for a partition the group never committed, whose ``lag`` is then ``end - start`` (with
``consumer_auto_offset_reset='earliest'``, what a worker would read) or 0 (``latest``);
changelog partitions (assigned through the group, read outside it) have a null ``lag``.
The leader-election topic ``{app}-__leader`` is not listed: its owner is the member with
``"leader": true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import click

from .base import CommandError

if TYPE_CHECKING:
    from ..app import App
    from ..transport.kafka import KafkaTransport
    from ..transport.kafka.groups import GroupStatus

__all__ = ["run_status", "NO_MEMBERS", "SCHEMA_VERSION"]

#: The exit status when the group has no members (as ``systemctl status`` for a unit
#: that is not running).
NO_MEMBERS = 3
SCHEMA_VERSION = 1


def run_status(app: App, as_json: bool) -> int:
    """Print the status of ``app``'s consumer group; return the exit status
    (``faust -A app status`` calls this).

    Example::

        sys.exit(run_status(app, as_json=True))   # 0, or NO_MEMBERS when none runs
    """
    if any(url.partition("://")[0] == "memory" for url in app.conf.broker):
        raise CommandError(
            "status needs a Kafka broker: the app's broker is memory:// (embedded), which "
            "lives inside the worker's process, where no other process can ask about it. "
            "Name the Kafka the workers use: broker='kafka://localhost:9092' in "
            "faust.App(...), or FAUST_BROKER=kafka://localhost:9092."
        )
    # Any other broker is Kafka (app.transport refuses unknown schemes).
    transport = cast("KafkaTransport", app.transport)
    with _quiet_clients():
        report = asyncio.run(_collect(app, transport))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0 if report["members"] else NO_MEMBERS


async def _collect(app: App, transport: KafkaTransport) -> dict[str, Any]:
    from aiokafka.errors import KafkaError

    from ..transport.kafka.groups import describe_group

    conf = app.conf
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables}
    topics = set(changelogs)
    for agent in app.agents.values():
        topics.update(getattr(agent.channel, "topics", ()))
    try:
        group = await describe_group(
            transport,
            conf.group_id,
            topics,
            changelog_topics=changelogs,
            from_earliest=conf.consumer_auto_offset_reset == "earliest",
        )
    except KafkaError as exc:
        raise CommandError(
            f"status: Kafka at {transport.describe()} could not describe consumer group "
            f"{conf.group_id!r}: {exc}. Try again in a moment; if it persists, read the "
            "brokers' logs."
        ) from None
    finally:
        await app.release_clients()
    return _report(app, transport, group)


def _report(app: App, transport: KafkaTransport, group: GroupStatus) -> dict[str, Any]:
    from ..transport.base import TP

    leader = TP(transport.leader_topic, 0)
    urls = {m.member_id: m.url or None for m in group.members}
    members = [
        {
            "member_id": m.member_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "host": m.host or None,
            "url": m.url or None,
            "leader": leader in m.partitions,
            "partitions": _tps(tp for tp in m.partitions if tp != leader),
            "standbys": _tps(m.standbys),
        }
        for m in group.members
    ]
    partitions = [
        {
            "topic": p.topic,
            "partition": p.partition,
            "kind": "changelog" if p.changelog else "source",
            "owner": p.owner,
            "owner_url": urls.get(p.owner) if p.owner else None,
            "committed": p.committed,
            "start": p.start,
            "end": p.end,
            "lag": p.lag,
        }
        for p in group.partitions
        if p.topic != leader.topic
    ]
    return {
        "version": SCHEMA_VERSION,
        "app": app.conf.id,
        "group": group.group_id,
        "broker": transport.describe(),
        "state": group.state,
        "members": members,
        "partitions": partitions,
        "lag": sum(p["lag"] or 0 for p in partitions),
        "missing_topics": [t for t in group.missing_topics if t != leader.topic],
    }


def _tps(tps: Any) -> list[dict[str, Any]]:
    return [{"topic": tp.topic, "partition": tp.partition} for tp in tps]


@contextlib.contextmanager
def _quiet_clients() -> Iterator[None]:
    """Keep the clients' log lines out of the report: a failure ends in one error line
    (the transport's own), not in aiokafka's retries before it."""
    names = ("aiokafka", "faust.transport")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# -- the readable report -----------------------------------------------------------------


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped into a file or grep: whole lines (not wrapped at 80 columns), without
        # the padding that fills a terminal's width.
        width = int(os.environ.get("COLUMNS") or 0) or 200
        console = Console(highlight=False, width=width, no_color=True)
        with console.capture() as captured:
            _render(console, report)
        for line in captured.get().splitlines():
            click.echo(line.rstrip())
        return
    _render(console, report)


def _render(console: Any, report: dict[str, Any]) -> None:
    from rich.console import JustifyMethod
    from rich.table import Table

    members = report["members"]
    group = report["group"]
    if members:
        rebalancing = report["state"] in ("PreparingRebalance", "CompletingRebalance")
        console.print(
            f"Group {group!r} on {report['broker']}: {report['state']}, "
            f"{len(members)} member(s), lag {report['lag']}"
            + (" (rebalancing: partitions are about to move)" if rebalancing else "")
        )
    elif report["state"] == "Dead" and not any(
        p["committed"] is not None for p in report["partitions"]
    ):
        console.print(
            f"Group {group!r} does not exist on {report['broker']}: no worker of app "
            f"{report['app']!r} has joined it yet (faust -A app worker starts one)."
        )
    else:
        console.print(
            f"Group {group!r} on {report['broker']} has no members: no worker is running. "
            f"Its committed offsets (lag {report['lag']}):"
        )
    labels = _owner_labels(members)
    if members:
        table = Table(title="Members", title_justify="left", box=None, header_style="bold")
        for column in ("member", "client", "host", "url", "partitions", "standbys", "leader"):
            table.add_column(column.upper(), overflow="fold")
        for m in members:
            table.add_row(
                m["member_id"],
                f"{m['client_id']} {m['client_host']}",
                m["host"] or "-",
                m["url"] or "-",
                str(len(m["partitions"])),
                str(len(m["standbys"])),
                "yes" if m["leader"] else "",
            )
        console.print()
        console.print(table)
    if report["partitions"]:
        table = Table(title="Partitions", title_justify="left", box=None, header_style="bold")
        for column in ("topic", "partition", "owner", "committed", "end", "lag"):
            justify: JustifyMethod = "left" if column in ("topic", "owner") else "right"
            table.add_column(column.upper(), justify=justify, overflow="fold")
        for p in report["partitions"]:
            table.add_row(
                p["topic"] + (" (changelog)" if p["kind"] == "changelog" else ""),
                str(p["partition"]),
                labels.get(p["owner"], "-") if p["owner"] else "-",
                _number(p["committed"]),
                str(p["end"]),
                _number(p["lag"]),
            )
        console.print()
        console.print(table)
    if report["missing_topics"]:
        console.print()
        console.print("Topics not created yet: " + ", ".join(report["missing_topics"]))


def _owner_labels(members: list[dict[str, Any]]) -> dict[str, str]:
    """How the partition table names an owner: its URL, when every member has its own;
    otherwise its member id."""
    urls = [m["url"] for m in members]
    by_url = all(urls) and len(set(urls)) == len(urls)
    return {m["member_id"]: m["url"] if by_url else m["member_id"] for m in members}


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)
