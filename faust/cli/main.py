"""``faust -A module COMMAND`` and ``python app.py COMMAND``."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

import click

from ..exceptions import ImproperlyConfigured
from ..stores.datadir import DataDirInUse, DataDirLock
from .base import CommandError, CommandUsageError, find_app, print_table
from .housekeeping import clean_versions, completion

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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # Global flags given after the command (faust -A app agents --json), as Faust
        # allows: taken out unless the command has an option of that name itself.
        if command is not None:
            own = {opt for param in command.params for opt in getattr(param, "opts", ())}
            end = rest.index("--") if "--" in rest else len(rest)
            obj = ctx.ensure_object(dict)
            for flag, key in _TRAILING_FLAGS.items():
                if flag not in own and flag in rest[:end]:
                    obj[key] = True
                    rest = [a for i, a in enumerate(rest) if i >= end or a != flag]
                    end = rest.index("--") if "--" in rest else len(rest)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImproperlyConfigured as exc:
            # A setting the command needs is wrong (an unreachable broker, a store that
            # cannot open): the message names it and the fix; a traceback would bury it.
            raise CommandError(str(exc)) from None


#: Global flags also accepted after the command name, and the ctx.obj key they set.
_TRAILING_FLAGS = {"--json": "json", "--debug": "debug"}

#: -L/--loop values: Faust's names; only asyncio loops can run this library.
LOOPS = {"aio": "asyncio", "asyncio": "asyncio", "uvloop": "uvloop"}


def _check_loop(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    loop = LOOPS.get(value.lower())
    if loop is None:
        raise CommandUsageError(
            f"--loop {value}: this Faust runs on asyncio only; use -L asyncio (or aio), or "
            "-L uvloop for uvloop's asyncio loop. eventlet and gevent are not supported."
        )
    if loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise CommandUsageError(
                "--loop uvloop: uvloop is not installed; pip install uvloop, or use -L asyncio."
            ) from None
    return loop


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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable JSON (also after the command).",
)
@click.option(
    "-W",
    "--workdir",
    default=None,
    is_eager=True,  # before -A imports the app, which is looked up from here
    expose_value=False,
    callback=lambda _ctx, _param, value: _change_workdir(value),
    help="Change to this directory first (the app is imported from it).",
)
@click.option(
    "-D",
    "--datadir",
    default=None,
    help="Keep the tables' data on disk here (the datadir setting; {appid} is the app id).",
)
@click.option(
    "-L",
    "--loop",
    default=None,
    callback=_check_loop,
    help="Event loop: asyncio (or aio) or uvloop. Default: uvloop when installed.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Log at debug level and run the loop in asyncio debug mode (reports blocking calls).",
)
@click.option("-l", "--loglevel", default=None, help="Log level (worker: default info).")
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the worker's start-up banner.")
@click.version_option(package_name="faust", prog_name="faust")
@click.pass_context
def cli(
    ctx: click.Context,
    app_spec: str | None,
    as_json: bool,
    datadir: str | None,
    loop: str | None,
    debug: bool,
    loglevel: str | None,
    logfile: str | None,
    quiet: bool,
) -> None:
    """Faust: stream processing for Python."""
    obj = ctx.ensure_object(dict)
    if app_spec:
        obj["app_spec"] = app_spec
    # Flags may also have come after the command (see FaustGroup.resolve_command).
    obj["json"] = as_json or obj.get("json", False)
    obj["debug"] = debug or obj.get("debug", False)
    obj.update(datadir=datadir, loop=loop, loglevel=loglevel, logfile=logfile, quiet=quiet)
    if (loglevel or debug or logfile) and ctx.invoked_subcommand != "worker":
        # Other commands log too (sending, admin calls); the worker sets up its own.
        from ..logs import setup_logging

        if logfile is not None:
            _check_logfile(logfile)
        try:
            setup_logging(loglevel or ("debug" if debug else "warning"), logfile)
        except ValueError as exc:
            raise CommandUsageError(f"--loglevel {loglevel}: {exc}") from None
    if obj.get("app") is not None:  # an @app.command, or app.main()
        _apply_options(obj)


def _change_workdir(path: str | None) -> None:
    if path is None:
        return
    try:
        os.chdir(path)
    except OSError as exc:
        raise CommandUsageError(
            f"--workdir {path}: cannot change to it ({exc.strerror}); give an existing directory."
        ) from None


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
@click.option("-l", "--loglevel", default=None, help="Log level (default info; or faust -l).")
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
@click.option(
    "--blocking-timeout",
    type=float,
    default=None,
    help="Warn with a stack when the event loop blocks this long (setting blocking_timeout).",
)
@click.option(
    "--console-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Accepted from Faust; there is no aiomonitor console (kill -USR1 <pid> lists tasks).",
)
@click.pass_context
def worker(
    ctx: click.Context,
    loglevel: str | None,
    logfile: str | None,
    quiet: bool,
    json_logs: bool,
    web_port: int | None,
    web_bind: str | None,
    web_host: str | None,
    without_web: bool,
    blocking_timeout: float | None,
    console_port: int | None,
) -> None:
    """Start a worker for the app (stop with Ctrl-C)."""
    from ..worker import Worker

    app = _require_app(ctx)
    root = ctx.find_root().obj
    debug = bool(root.get("debug"))
    loglevel = loglevel or root.get("loglevel") or ("debug" if debug else "info")
    logfile = logfile or root.get("logfile")
    quiet = quiet or bool(root.get("quiet"))
    if logfile is not None:
        _check_logfile(logfile)
    if without_web:
        app.conf.web_enabled = False
    if web_bind is not None:
        app.conf.web_bind = web_bind
    if blocking_timeout is not None:
        if not blocking_timeout > 0:
            raise CommandUsageError(
                f"--blocking-timeout {blocking_timeout}: give a number of seconds > 0."
            )
        app.conf.blocking_timeout = blocking_timeout
    if console_port is not None:
        click.echo(
            f"faust: warning: --console-port {console_port}: there is no aiomonitor "
            "console here; `kill -USR1 <pid>` logs what every task waits for.",
            err=True,
        )
    app.conf.set_web_address(host=web_host, port=web_port)
    log_format = "json" if json_logs else None
    sys.exit(
        Worker(
            app,
            loglevel=loglevel,
            logfile=logfile,
            quiet=quiet,
            log_format=log_format,
            loop=root.get("loop"),
            debug=debug,
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
@click.option(
    "-K", "--key-type", default=None, help="Model (Record) of the key; --key is its JSON."
)
@click.option(
    "-V", "--value-type", default=None, help="Model (Record) of the value; VALUE is its JSON."
)
@click.option("--key-serializer", default=None, help="Codec of the key instead of the topic's.")
@click.option("--value-serializer", default=None, help="Codec of the value instead of the topic's.")
@click.option("-p", "--partition", type=int, default=None, help="Send to this partition.")
@click.option("-r", "--repeat", type=int, default=1, show_default=True, help="Send N times.")
@click.option(
    "--min-latency",
    type=float,
    default=0.0,
    show_default=True,
    help="Least seconds to wait between repeated sends.",
)
@click.option(
    "--max-latency",
    type=float,
    default=0.0,
    show_default=True,
    help="Most seconds to wait between repeated sends (a random wait in between).",
)
@click.pass_context
def send(
    ctx: click.Context,
    entity: str,
    value: str | None,
    key: str | None,
    key_type: str | None,
    value_type: str | None,
    key_serializer: str | None,
    value_serializer: str | None,
    partition: int | None,
    repeat: int,
    min_latency: float,
    max_latency: float,
) -> None:
    """Send VALUE to a topic, or to an agent with @name.

    VALUE is the record as its serializer writes it (JSON for Records); it is checked
    against the topic's value_type (or --value-type) before anything is sent.
    """
    if repeat < 1:
        raise CommandUsageError(f"--repeat {repeat}: send at least once (-r 1 or more).")
    if partition is not None and partition < 0:
        raise CommandUsageError(f"--partition {partition}: partitions are numbered from 0.")
    if value is None and key is None:
        raise CommandUsageError(f"send {entity}: give a VALUE, a --key, or both.")
    if min_latency < 0 or max_latency < 0 or min_latency > max_latency > 0:
        raise CommandUsageError(
            f"--min-latency {min_latency} --max-latency {max_latency}: give seconds >= 0, "
            "the minimum not above the maximum."
        )
    app = _require_app(ctx)
    topic, declared = _resolve_entity(app, entity)
    name = topic.get_topic_name()
    schema = _send_schema(topic.schema, key_type, value_type, key_serializer, value_serializer)
    key_bytes = None if key is None else _encode_cli(schema, key, "key", name)
    value_bytes = None if value is None else _encode_cli(schema, value, "value", name)
    _refuse_embedded_broker(app, "send")
    latency = (min_latency, max(min_latency, max_latency))
    results = asyncio.run(
        _send(
            app,
            topic if declared else None,
            name,
            key_bytes,
            value_bytes,
            partition,
            repeat,
            latency,
        )
    )
    rows = [{"topic": m.topic, "partition": m.partition, "offset": m.offset} for m in results]
    if _as_json(ctx):
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"sent to {row['topic']}[{row['partition']}] at offset {row['offset']}")


def _send_schema(
    schema: Any,
    key_type: str | None,
    value_type: str | None,
    key_serializer: str | None,
    value_serializer: str | None,
) -> Any:
    """The topic's schema with the types and codecs given on the command line."""
    from ..serializers import get_codec

    changes: dict[str, Any] = {}
    for option, model_name, field in (
        ("--key-type", key_type, "key_type"),
        ("--value-type", value_type, "value_type"),
    ):
        if model_name is not None:
            changes[field] = _model_named(model_name, option)
    for option, codec, field in (
        ("--key-serializer", key_serializer, "key_serializer"),
        ("--value-serializer", value_serializer, "value_serializer"),
    ):
        if codec is not None:
            try:
                get_codec(codec)
            except Exception as exc:  # noqa: BLE001 - the registry's message names the codecs
                raise CommandUsageError(f"{option} {codec}: {exc}") from None
            changes[field] = codec
    return schema.derive(**changes) if changes else schema


def _model_named(name: str, option: str) -> Any:
    """The Record class registered as ``name`` (its namespace or its class name)."""
    from ..models import registry

    matches = [cls for ns, cls in registry.items() if name in (ns, ns.rpartition(".")[2])]
    if len(matches) != 1:
        found = "several models" if matches else "no model"
        raise CommandUsageError(
            f"{option} {name}: {found} named {name!r}; give a name 'faust models' lists "
            "(the full name if two share a class name)."
        )
    return matches[0]


def _refuse_embedded_broker(app: Any, command: str) -> None:
    """A command in its own process cannot reach the embedded broker of a worker's."""
    from ..settings import ENV_PREFIX

    app.finalize()  # on_configured receivers may set the broker (Faust's Django example)
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
        app.discover()  # agents of autodiscover modules (as faust worker finds them)
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
    latency: tuple[float, float] = (0.0, 0.0),
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
        for i in range(repeat):
            if i and latency[1]:
                await asyncio.sleep(random.uniform(*latency))
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
    from ..models import Record

    raw = text.encode()
    load = schema.loads_key if part == "key" else schema.loads_value
    dump = schema.dumps_key if part == "key" else schema.dumps_value
    model = schema.key_type if part == "key" else schema.value_type
    if isinstance(model, type) and issubclass(model, Record):
        # JSON fields of the model, encoded with the codec chosen (as Faust's send does).
        try:
            encoded = dump(model.from_data(json.loads(text)))
            load(encoded)
            return encoded if encoded is not None else raw
        except Exception:  # noqa: BLE001 - the text may be the encoded form: tried next
            pass
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (as faust --json).")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the app's workers, partition owners, committed offsets and lag, from Kafka.

    Exit status: 0 when the group has members, 3 when no worker runs (the committed
    offsets are still shown), 1 on an error.
    """
    from .status import run_status

    app = _require_app(ctx)
    ctx.exit(run_status(app, as_json or _as_json(ctx)))


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
            raise CommandError(
                f"reset: a worker{exc.pid_note} is running on data directory {exc.datadir!r}; "
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


cli.add_command(clean_versions)
cli.add_command(completion)


def main(argv: list[str] | None = None) -> None:
    """The ``faust`` console command."""
    cli.main(args=argv, prog_name="faust")


def run_app_cli(app: Any, argv: list[str] | None = None) -> None:
    """``app.main()``: the same commands with the app already chosen (``python app.py
    COMMAND``; ``argv`` defaults to ``sys.argv[1:]``)."""
    cli.main(args=argv, prog_name=os.path.basename(sys.argv[0]) or "faust", obj={"app": app})
