"""Faust's ``faust.types.transports``: the names typed Faust code imports from it."""

from . import ConsumerT, ProducerT, TransportT

__all__ = ["ConsumerT", "ProducerT", "TransportT"]
