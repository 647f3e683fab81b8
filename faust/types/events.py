"""Faust's ``faust.types.events``: the names typed Faust code imports from it."""

from . import EventT

__all__ = ["EventT"]
