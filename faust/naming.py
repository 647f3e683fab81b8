"""Names Faust derives from the user's code (agents, and the topics named after them).

A derived name must not depend on how the program was started: ``python app.py worker``
runs ``app.py`` as the module ``__main__``, while ``faust -A app worker`` imports it as
``app``. Both must name the agent ``app.count`` and read the same topic.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["module_name"]


def module_name(module: str) -> str:
    """The name ``module`` is imported by, with ``__main__`` resolved to its real name.

    ``python -m shop.app`` gives ``shop.app``; ``python app.py`` gives ``app``, or
    ``shop.app`` when ``app.py`` sits in the package ``shop`` (a folder with an
    ``__init__.py``), as ``faust -A shop.app`` would import it. Only an interactive
    session, which has no file, stays ``__main__``.

    Example::

        module_name('shop.app')    # 'shop.app'
        module_name('__main__')    # 'app' when started as: python app.py worker
    """
    if module != "__main__":
        return module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)  # python -m shop.app
    filename = getattr(main, "__file__", None)
    if not filename:
        return module  # the REPL: there is no other name
    path = Path(filename).absolute()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.name:
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)
