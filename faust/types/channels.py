"""Faust's ``faust.types.channels``: the names typed Faust code imports from it."""

from . import ChannelT

__all__ = ["ChannelT"]
