"""Shared pieces of the CLI: finding the app, output as text or JSON, app commands."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

__all__ = [
    "find_app",
    "print_table",
    "app_command",
    "CommandContext",
    "CommandError",
    "CommandUsageError",
]


class CommandError(click.ClickException):
    """A mistake the user can fix, printed as one line: ``faust: error: <what, the fix>``
    (exit status 1).

    Example::

        raise CommandError("Topic 'orders' has 8 partitions, numbered 0 to 7.")
    """

    def show(self, file: Any = None) -> None:
        click.echo(f"faust: error: {self.format_message()}", file=file, err=True)


class CommandUsageError(CommandError):
    """A wrong command line, in one line (exit status 2, as click's usage errors)."""

    exit_code = 2


def find_app(spec: str) -> Any:
    """Import ``module`` or ``module:attribute`` and return the App it holds."""
    from ..app import App
    from ..exceptions import ImproperlyConfigured

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        raise CommandUsageError(_path_instead_of_module(spec, module_name, attr))
    try:
        module = importlib.import_module(module_name)
    except ImproperlyConfigured as exc:
        # A declaration in the module is wrong (a crontab's time zone, a setting).
        raise CommandError(str(exc)) from None
    except ImportError as exc:
        if exc.name is not None and exc.name != module_name.partition(".")[0]:
            raise  # the module exists but itself imports something missing
        raise CommandUsageError(
            f"-A {spec}: cannot import {module_name!r} ({exc}). Run from the directory "
            "that holds it, or give a dotted module path.",
        ) from None
    apps = {name: value for name, value in vars(module).items() if isinstance(value, App)}
    hint = f" Its app: -A {module_name}:{next(iter(apps))}." if len(apps) == 1 else ""
    if attr:
        if not hasattr(module, attr):
            raise CommandUsageError(
                f"-A {spec}: module {module_name!r} has no attribute {attr!r}.{hint}",
            )
        app = getattr(module, attr)
        if not isinstance(app, App):
            raise CommandUsageError(
                f"-A {spec}: {attr!r} in {module_name!r} is not a faust.App.{hint}"
            )
        return app
    app = getattr(module, "app", None)
    if isinstance(app, App):
        return app
    if len(apps) == 1:
        return next(iter(apps.values()))
    raise CommandUsageError(
        f"-A {spec}: found {len(apps)} faust.App objects in {module_name!r}; "
        "name one as -A module:attribute.",
    )


def _path_instead_of_module(spec: str, path: str, attr: str) -> str:
    """The message for ``-A hello.py`` or ``-A src/shop/app.py``: -A takes a module."""
    file = Path(path)
    suffix = f":{attr}" if attr else ""
    module = (file.stem if file.suffix == ".py" else file.name) + suffix
    parent = file.parent
    where = package = ""
    if str(parent) not in ("", "."):
        where = f" from the directory {str(parent)!r}"
        if not parent.is_absolute():
            dotted = ".".join([*parent.parts, module])
            package = f" (or -A {dotted} if {str(parent)!r} is a package)"
    return f"-A {spec}: -A takes a module name, not a file path: use -A {module}{where}{package}."


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """Print rows as aligned text columns, or as a JSON list with ``--json``."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    click.echo("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


class CommandContext:
    """The ``self`` of an ``@app.command`` function."""

    def __init__(self, app: Any, as_json: bool = False) -> None:
        self.app = app
        self.json = as_json

    def say(self, message: Any) -> None:
        click.echo(message)


def app_command(
    app: Any,
    fun: Callable[..., Any],
    options: Sequence[Callable[[Any], Any]],
    *,
    name: str | None = None,
    **kwargs: Any,
) -> click.Command:
    """Turn ``fun(self, **options)`` or ``fun(**options)`` (sync or async) into a click
    command for ``app``; ``options`` apply in the order they are written."""
    wants_self: bool | None = None  # known once the parameters are attached below

    @click.pass_context
    def callback(ctx: click.Context, **params: Any) -> Any:
        obj = ctx.find_root().obj or {}
        if wants_self:
            result = fun(CommandContext(app, as_json=bool(obj.get("json"))), **params)
        else:
            result = fun(**params)
        if inspect.isawaitable(result):
            return asyncio.run(_run_async(app, result))
        return result

    command = click.Command(
        name or fun.__name__.replace("_", "-"),
        callback=callback,
        help=kwargs.pop("help", None) or inspect.getdoc(fun),
        **kwargs,
    )
    # click's option()/argument() append to a Command's params (unlike on a function,
    # where they stack bottom-up): applied in the written order, positional arguments
    # are read in that order.
    for decorator in options:
        decorator(command)
    wants_self = _takes_context(fun, {p.name for p in command.params if p.name})
    command.__wrapped__ = fun  # type: ignore[attr-defined]
    return command


def _takes_context(fun: Callable[..., Any], param_names: set[str]) -> bool:
    """True if ``fun``'s first parameter is not one of the command's options or
    arguments: it is then the ``self`` (a :class:`CommandContext`) of the command."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for param in inspect.signature(fun).parameters.values():
        return param.kind in positional and param.name not in param_names
    return False


async def _run_async(app: Any, coro: Any) -> Any:
    try:
        return await coro
    finally:
        # The command may have sent (the producer, the admin client) or asked (the
        # reply reader): none of them may be left open.
        await app.release_clients()
