"""``faust -A module COMMAND`` and ``python app.py COMMAND``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import click

from ..exceptions import ImproperlyConfigured
from ..stores.datadir import DataDirInUse, DataDirLock
from .base import CommandError, CommandUsageError, find_app, print_table

__all__ = ["main", "cli", "run_app_cli"]


class FaustGroup(click.Group):
    """Adds the app's own ``@app.command`` commands to the built-in ones."""

    def _app(self, ctx: click.Context) -> Any:
        # Commands are looked up before the group's callback runs, so read -A from the
        # parsed parameters rather than from ctx.obj.
        obj = ctx.ensure_object(dict)
        spec = obj.get("app_spec") or ctx.params.get("app_spec")
        if obj.get("app") is None and spec:
            obj["app_spec"] = spec
            obj["app"] = find_app(spec)
        return obj.get("app")

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        try:
            app = self._app(ctx)
        except click.ClickException:
            app = None
        if app is not None:
            names.update(app.commands)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        app = self._app(ctx)
        return None if app is None else app.commands.get(name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImproperlyConfigured as exc:
            # A setting the command needs is wrong (an unreachable broker, a store that
            # cannot open): the message names it and the fix; a traceback would bury it.
            raise CommandError(str(exc)) from None


@click.group(cls=FaustGroup)
@click.option(
    "-A",
    "--app",
    "app_spec",
    default=None,
    is_eager=True,  # before --help, so the help lists the app's own commands
    callback=lambda ctx, _param, value: _remember_app_spec(ctx, value),
    help="The app: module or module:attr.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--datadir",
    default=None,
    help="Keep the tables' data on disk here (the datadir setting; {appid} is the app id).",
)
@click.version_option(package_name="faust", prog_name="faust")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, as_json: bool, datadir: str | None) -> None:
    """Faust: stream processing for Python."""
    obj = ctx.ensure_object(dict)
    if app_spec:
        obj["app_spec"] = app_spec
    obj["json"] = as_json
    obj["datadir"] = datadir
    if obj.get("app") is not None:  # an @app.command, or app.main()
        _apply_options(obj)


def _remember_app_spec(ctx: click.Context, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(dict)["app_spec"] = value
    return value


def _require_app(ctx: click.Context) -> Any:
    obj = ctx.find_root().ensure_object(dict)
    if obj.get("app") is None:
        if not obj.get("app_spec"):
            raise CommandUsageError("Which app? Give it with -A module (faust -A hello worker).")
        obj["app"] = find_app(obj["app_spec"])
    return _apply_options(obj)


def _apply_options(obj: dict[str, Any]) -> Any:
    """The app with the command line's settings applied (they win over the app's)."""
    app = obj["app"]
    datadir = obj.get("datadir")
    if datadir:
        app.conf.datadir = datadir.replace("{appid}", app.conf.id)
    return app


def _as_json(ctx: click.Context) -> bool:
    return bool(ctx.find_root().ensure_object(dict).get("json"))


@cli.command()
@click.option("-l", "--loglevel", default="info", show_default=True, help="Log level.")
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the start-up banner.")
@click.option(
    "--json-logs", is_flag=True, help="Log one JSON object per line (setting log_format='json')."
)
@click.option(
    "--web-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the web server (setting web_port, default 6066; 0: any free port).",
)
@click.option(
    "--web-bind", default=None, help="Interface it listens on (web_bind, default 0.0.0.0)."
)
@click.option("--web-host", default=None, help="Host name other workers reach it by (web_host).")
@click.option("--without-web", is_flag=True, help="Run no web server (web_enabled=False).")
@click.pass_context
def worker(
    ctx: click.Context,
    loglevel: str,
    logfile: str | None,
    quiet: bool,
    json_logs: bool,
    web_port: int | None,
    web_bind: str | None,
    web_host: str | None,
    without_web: bool,
) -> None:
    """Start a worker for the app (stop with Ctrl-C)."""
    from ..worker import Worker

    app = _require_app(ctx)
    if logfile is not None:
        _check_logfile(logfile)
    if without_web:
        app.conf.web_enabled = False
    if web_bind is not None:
        app.conf.web_bind = web_bind
    app.conf.set_web_address(host=web_host, port=web_port)
    log_format = "json" if json_logs else None
    sys.exit(
        Worker(
            app, loglevel=loglevel, logfile=logfile, quiet=quiet, log_format=log_format
        ).execute_from_commandline()
    )


def _check_logfile(path: str) -> None:
    """Refuse a log file the worker could not open, before it starts."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandUsageError(
            f"--logfile {path}: the directory {directory!r} does not exist; create it "
            "or log to another path.",
        )
    if os.path.isdir(path) or not os.access(path if os.path.exists(path) else directory, os.W_OK):
        raise CommandUsageError(
            f"--logfile {path}: cannot write there; give a file in a writable directory.",
        )


@cli.command()
@click.argument("entity")
@click.argument("value", required=False)
@click.option("-k", "--key", default=None, help="The record's key.")
@click.option("-p", "--partition", type=int, default=None, help="Send to this partition.")
@click.option("-r", "--repeat", type=int, default=1, show_default=True, help="Send N times.")
@click.pass_context
def send(
    ctx: click.Context,
    entity: str,
    value: str | None,
    key: str | None,
    partition: int | None,
    repeat: int,
) -> None:
    """Send VALUE to a topic, or to an agent with @name.

    VALUE is the record as its serializer writes it (JSON for Records); it is checked
    against the topic's value_type before anything is sent.
    """
    if repeat < 1:
        raise CommandUsageError(f"--repeat {repeat}: send at least once (-r 1 or more).")
    if partition is not None and partition < 0:
        raise CommandUsageError(f"--partition {partition}: partitions are numbered from 0.")
    if value is None and key is None:
        raise CommandUsageError(f"send {entity}: give a VALUE, a --key, or both.")
    app = _require_app(ctx)
    topic, declared = _resolve_entity(app, entity)
    name = topic.get_topic_name()
    key_bytes = None if key is None else _encode_cli(topic.schema, key, "key", name)
    value_bytes = None if value is None else _encode_cli(topic.schema, value, "value", name)
    _refuse_embedded_broker(app, "send")
    results = asyncio.run(
        _send(app, topic if declared else None, name, key_bytes, value_bytes, partition, repeat)
    )
    rows = [{"topic": m.topic, "partition": m.partition, "offset": m.offset} for m in results]
    if _as_json(ctx):
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"sent to {row['topic']}[{row['partition']}] at offset {row['offset']}")


def _refuse_embedded_broker(app: Any, command: str) -> None:
    """A command in its own process cannot reach the embedded broker of a worker's."""
    from ..settings import ENV_PREFIX

    if all(url.partition("://")[0] != "memory" for url in app.conf.broker):
        return
    raise CommandError(
        f"{command}: the app's broker is memory:// (embedded), which lives inside one "
        "process, so a worker in another process would never see this. Give the app a "
        "real broker: broker='kafka://localhost:9092' in faust.App(...), or the "
        f"environment variable {ENV_PREFIX}BROKER=kafka://localhost:9092 if the app does "
        "not set broker."
    )


def _resolve_entity(app: Any, entity: str) -> tuple[Any, bool]:
    """The topic to send to, and whether the app declares it (with its types)."""
    from ..topics import Topic

    if entity.startswith("@"):
        name = entity[1:]
        for agent in app.agents.values():
            if name in (agent.name, agent.name.rpartition(".")[2]):
                if not isinstance(agent.channel, Topic) or len(agent.channel.topics) != 1:
                    raise CommandUsageError(
                        f"@{name} reads {agent.channel!r}, not one topic: only topics "
                        "can be sent to from the command line.",
                    )
                return agent.channel, True
        known = ", ".join("@" + a.name.rpartition(".")[2] for a in app.agents.values())
        raise CommandUsageError(f"No agent named {name!r}. Agents: {known or 'none'}.")
    declared = _declared_topic(app, entity)
    if declared is not None:
        return declared, True
    try:
        return app.topic(entity), False
    except ValueError as exc:  # a name Kafka would reject
        raise CommandUsageError(str(exc)) from None


def _declared_topic(app: Any, name: str) -> Any:
    """The topic named ``name`` as the app declares it (so its schema checks the value):
    an agent's, or one held by a module-level variable of a loaded module."""
    from ..topics import Topic

    for agent in app.agents.values():
        channel = agent.channel
        if isinstance(channel, Topic) and channel.topics == (name,):
            return channel
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, Topic) and value.app is app and value.topics == (name,):
                return value
    return None


async def _send(
    app: Any,
    declared: Any,
    name: str,
    key: bytes | None,
    value: bytes | None,
    partition: int | None,
    repeat: int,
) -> list[Any]:
    try:
        producer = await app.maybe_start_producer()
        if declared is not None:
            # As a worker would: created with the app's partition count, not the broker's.
            await app.declare_topic(declared)
        if partition is not None:
            count = await app.transport.partition_count(name)
            if count is not None and partition >= count:
                raise CommandUsageError(
                    f"--partition {partition}: topic {name!r} has {count} partition(s), "
                    f"numbered 0 to {count - 1}.",
                )
        results = []
        for _ in range(repeat):
            fut = await producer.send(name, key, value, partition=partition)
            try:
                results.append(await fut)
            except Exception as exc:
                raise CommandError(f"Could not send to topic {name!r}: {exc}") from None
        return results
    finally:
        await app.release_clients()


def _encode_cli(schema: Any, text: str, part: str, topic: str) -> bytes:
    """The bytes to send for text typed on the command line.

    The text is taken as the serialized form when the topic can decode it; otherwise it
    is serialized as a plain value (so ``send topic hello`` works for JSON topics).
    """
    raw = text.encode()
    load = schema.loads_key if part == "key" else schema.loads_value
    dump = schema.dumps_key if part == "key" else schema.dumps_value
    try:
        load(raw)
        return raw
    except Exception as exc:
        # Why the text as typed does not fit: the clearer of the two reasons.
        reason = " ".join(str(exc).split())
    try:
        encoded = dump(text)
        load(encoded)
    except Exception:
        option = "--key" if part == "key" else "VALUE"
        raise CommandUsageError(
            f"{option} {text!r} does not fit topic {topic!r}: {reason}. Give the {part} as "
            "the topic's serializer writes it (JSON for a Record).",
        ) from None
    return encoded if encoded is not None else raw


@cli.command()
@click.pass_context
def agents(ctx: click.Context) -> None:
    """List the app's agents."""
    app = _require_app(ctx)
    rows = [
        {
            "name": "@" + agent.name.rpartition(".")[2],
            "topic": ",".join(getattr(agent.channel, "topics", ())) or "<in-memory channel>",
            "help": agent.help,
        }
        for agent in sorted(app.agents.values(), key=lambda a: a.name)
    ]
    print_table(rows, ["name", "topic", "help"], _as_json(ctx))


@cli.command()
@click.pass_context
def models(ctx: click.Context) -> None:
    """List the models (Records) the app knows."""
    from ..models import registry

    _require_app(ctx)
    rows = [
        {"name": name, "help": (cls.__doc__ or "").strip().split("\n")[0]}
        for name, cls in sorted(registry.items())
        if not name.startswith("faust.")
    ]
    print_table(rows, ["name", "help"], _as_json(ctx))


@cli.command()
@click.argument("name")
@click.pass_context
def model(ctx: click.Context, name: str) -> None:
    """Show the fields of the model NAME."""
    from ..models import describe_fields, registry

    _require_app(ctx)
    matches = [cls for ns, cls in registry.items() if name in (ns, ns.rpartition(".")[2])]
    if not matches:
        raise click.UsageError(f"No model named {name!r}; 'faust models' lists them.")
    rows = [
        {"field": field, "type": type_repr, "default": default_repr}
        for field, type_repr, default_repr in describe_fields(matches[0])
    ]
    print_table(rows, ["field", "type", "default"], _as_json(ctx))


@cli.command()
@click.pass_context
def tables(ctx: click.Context) -> None:
    """List the app's tables with their local sizes."""
    app = _require_app(ctx)
    rows = []
    for table in app.tables:
        store = table.store
        count = getattr(store, "count_on_disk", None)
        rows.append(
            {
                "name": table.name,
                "kind": type(table).__name__,
                "partitions": table.partitions,
                "store": table.store_url,
                "changelog": table.changelog_topic.name,
                # Only a persistent store has data here when no worker runs in this process.
                "local_keys": count() if count is not None else None,
                "help": table.help,
            }
        )
    print_table(
        rows, ["name", "kind", "partitions", "store", "changelog", "local_keys"], _as_json(ctx)
    )


@cli.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reset(ctx: click.Context, yes: bool) -> None:
    """Delete this worker's local table state (it is restored from the changelogs)."""
    app = _require_app(ctx)
    names = [table.name for table in app.tables]
    if not names:
        click.echo("No tables: nothing to reset.")
        return
    # A worker with tables on disk holds this lock while it runs (see open_stores);
    # holding it while deleting also keeps a worker from starting on half-deleted data.
    lock = DataDirLock(app.conf.datadir)
    on_disk = any(table.store.persistent for table in app.tables)
    if on_disk and os.path.isdir(app.conf.datadir):  # (nothing to delete otherwise)
        try:
            lock.acquire()
        except DataDirInUse as exc:
            pid = "" if exc.pid is None else f" (pid {exc.pid})"
            raise CommandError(
                f"reset: a worker{pid} is running on data directory {exc.datadir!r}; "
                "resetting would delete its tables under it. Stop the worker first."
            ) from None
    try:
        if not yes:
            click.confirm(
                f"Delete local state of {', '.join(names)} under {app.conf.datadir}?", abort=True
            )
        for table in app.tables:
            table.store.reset()
    finally:
        lock.release()
    click.echo(f"Deleted local state of {len(names)} table(s); the next start restores them.")


def main(argv: list[str] | None = None) -> None:
    """The ``faust`` console command."""
    cli.main(args=argv, prog_name="faust")


def run_app_cli(app: Any, argv: list[str] | None = None) -> None:
    """``app.main()``: the same commands with the app already chosen (``python app.py
    COMMAND``; ``argv`` defaults to ``sys.argv[1:]``)."""
    cli.main(args=argv, prog_name=os.path.basename(sys.argv[0]) or "faust", obj={"app": app})
