"""Commands that look after the installation: ``clean-versions`` and ``completion``."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

import click

from ..stores.datadir import DataDirInUse, DataDirLock
from .base import CommandError, CommandUsageError

__all__ = ["clean_versions", "completion"]


@click.command("clean-versions")
@click.pass_context
def clean_versions(ctx: click.Context) -> None:
    """Delete the data directories of the app's other versions (the version setting).

    Bumping ``version`` gives the app a new data directory ({appid} becomes
    ID-vN); the old ones stay on disk until this deletes them. The current one is kept.
    """
    from .main import _require_app

    app = _require_app(ctx)
    old = _old_version_dirs(app.conf)
    if not old:
        click.echo(f"No data directories of other versions next to {app.conf.datadir}.")
        return
    for path in old:
        lock = DataDirLock(path)
        try:
            lock.acquire()
        except DataDirInUse as exc:
            raise CommandError(
                f"clean-versions: a worker{exc.pid_note} is running on {exc.datadir!r}; stop it "
                "first, or leave that version's data."
            ) from None
        try:
            click.echo(f"Removing old version directory {path}...")
            shutil.rmtree(path)
        finally:
            lock.release()


def _old_version_dirs(conf: Any) -> list[str]:
    """Sibling directories of the datadir named as it is, for the app's other versions."""
    current = os.path.abspath(conf.datadir)
    parent, base = os.path.split(current)
    app_id = conf.id
    suffix = f"-v{conf.version}"
    root_id = app_id[: -len(suffix)] if conf.version > 1 and app_id.endswith(suffix) else app_id
    if app_id not in base or not os.path.isdir(parent):
        return []  # a datadir without the app id in its name is the same for all versions
    before, _, after = base.partition(app_id)
    pattern = re.compile(
        re.escape(before) + re.escape(root_id) + r"(-v[0-9]+)?" + re.escape(after) + "$"
    )
    return sorted(
        os.path.join(parent, name)
        for name in os.listdir(parent)
        if name != base and pattern.match(name) and os.path.isdir(os.path.join(parent, name))
    )


@click.command()
@click.option(
    "--shell",
    type=click.Choice(["bash", "zsh", "fish"]),
    default=None,
    help="The shell (default: the one $SHELL names).",
)
@click.pass_context
def completion(ctx: click.Context, shell: str | None) -> None:
    """Print the shell completion script, e.g. in ~/.bashrc: eval "$(faust completion)"."""
    from click.shell_completion import get_completion_class

    shell = shell or os.path.basename(os.environ.get("SHELL", "")) or "bash"
    completer = get_completion_class(shell)
    if completer is None:
        raise CommandUsageError(
            f"completion: no completion for the shell {shell!r}; give --shell bash, zsh or fish."
        )
    prog = ctx.find_root().info_name or "faust"
    complete_var = f"_{prog}_COMPLETE".replace("-", "_").upper()  # as click.main reads it
    root = ctx.find_root().command
    click.echo(completer(root, {}, prog, complete_var).source())
