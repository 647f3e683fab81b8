"""Faust's ``faust.types.topics``: the names typed Faust code imports from it."""

from . import ChannelT, EventT, TopicT

__all__ = ["ChannelT", "EventT", "TopicT"]
