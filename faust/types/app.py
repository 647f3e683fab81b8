"""Faust's ``faust.types.app``: the names typed Faust code imports from it."""

from . import AppT

__all__ = ["AppT"]
