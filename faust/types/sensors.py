"""Faust's ``faust.types.sensors``: the names typed Faust code imports from it."""

from . import SensorT

__all__ = ["SensorT"]
