"""``faust -A module COMMAND`` and ``python app.py COMMAND``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from .base import find_app, print_table

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
        except click.UsageError:
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
@click.version_option(package_name="faust", prog_name="faust")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, as_json: bool) -> None:
    """Faust: stream processing for Python."""
    obj = ctx.ensure_object(dict)
    if app_spec:
        obj["app_spec"] = app_spec
    obj["json"] = as_json


def _remember_app_spec(ctx: click.Context, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(dict)["app_spec"] = value
    return value


def _require_app(ctx: click.Context) -> Any:
    obj = ctx.find_root().ensure_object(dict)
    if obj.get("app") is None:
        if not obj.get("app_spec"):
            raise click.UsageError("Which app? Give it with -A module (faust -A hello worker).")
        obj["app"] = find_app(obj["app_spec"])
    return obj["app"]


def _as_json(ctx: click.Context) -> bool:
    return bool(ctx.find_root().ensure_object(dict).get("json"))


@cli.command()
@click.option("-l", "--loglevel", default="info", show_default=True, help="Log level.")
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the start-up banner.")
@click.option(
    "--json-logs", is_flag=True, help="Log one JSON object per line (setting log_format='json')."
)
@click.pass_context
def worker(
    ctx: click.Context, loglevel: str, logfile: str | None, quiet: bool, json_logs: bool
) -> None:
    """Start a worker for the app (stop with Ctrl-C)."""
    from ..worker import Worker

    app = _require_app(ctx)
    log_format = "json" if json_logs else None
    sys.exit(
        Worker(
            app, loglevel=loglevel, logfile=logfile, quiet=quiet, log_format=log_format
        ).execute_from_commandline()
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

    VALUE is the record as its serializer writes it (JSON for Records).
    """
    app = _require_app(ctx)
    topic = _resolve_entity(app, entity)
    results = asyncio.run(_send(app, topic, key, value, partition, repeat))
    rows = [{"topic": m.topic, "partition": m.partition, "offset": m.offset} for m in results]
    if _as_json(ctx):
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"sent to {row['topic']}[{row['partition']}] at offset {row['offset']}")


def _resolve_entity(app: Any, entity: str) -> Any:
    if entity.startswith("@"):
        name = entity[1:]
        for agent in app.agents.values():
            if name in (agent.name, agent.name.rpartition(".")[2]):
                return agent.channel
        known = ", ".join("@" + a.name.rpartition(".")[2] for a in app.agents.values())
        raise click.UsageError(f"No agent named {name!r}. Agents: {known or 'none'}.")
    return app.topic(entity)


async def _send(
    app: Any, topic: Any, key: str | None, value: str | None, partition: int | None, repeat: int
) -> list[Any]:
    if not hasattr(topic, "get_topic_name"):
        raise click.UsageError(
            "That agent reads an in-process channel; only topics can be sent to."
        )
    try:
        producer = await app.maybe_start_producer()
        key_bytes = None if key is None else _encode_cli(topic.schema, key, "key")
        value_bytes = None if value is None else _encode_cli(topic.schema, value, "value")
        results = []
        for _ in range(repeat):
            fut = await producer.send(
                topic.get_topic_name(), key_bytes, value_bytes, partition=partition
            )
            results.append(await fut)
        return results
    finally:
        await app.release_clients()


def _encode_cli(schema: Any, text: str, part: str) -> bytes:
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
    except Exception:
        pass
    try:
        encoded = dump(text)
        load(encoded)
    except Exception as exc:
        raise click.UsageError(f"Cannot send {text!r} as the {part} of this topic: {exc}") from None
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
    if not yes:
        click.confirm(
            f"Delete local state of {', '.join(names)} under {app.conf.datadir}?", abort=True
        )
    for table in app.tables:
        table.store.reset()
    click.echo(f"Deleted local state of {len(names)} table(s); the next start restores them.")


def main(argv: list[str] | None = None) -> None:
    """The ``faust`` console command."""
    cli.main(args=argv, prog_name="faust")


def run_app_cli(app: Any, argv: list[str] | None = None) -> None:
    """``app.main()``: the same commands with the app already chosen."""
    cli.main(args=argv, prog_name=sys.argv[0] if argv is None else "faust", obj={"app": app})
