"""Faust's ``faust.types.streams``: the names typed Faust code imports from it."""

from . import Processor, StreamT

__all__ = ["Processor", "StreamT"]
