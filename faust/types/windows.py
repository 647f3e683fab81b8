"""Faust's ``faust.types.windows``: the names typed Faust code imports from it."""

from . import WindowRange, WindowT

__all__ = ["WindowRange", "WindowT"]
