"""The ``faust`` command line; ``option``/``argument`` are for ``@app.command``."""

from click import argument, option

__all__ = ["option", "argument"]
