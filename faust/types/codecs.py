"""Faust's ``faust.types.codecs``: the names typed Faust code imports from it."""

from . import CodecArg, CodecT

__all__ = ["CodecArg", "CodecT"]
