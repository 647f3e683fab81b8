"""Sensors: hooks called as events flow, the in-memory Monitor, Prometheus metrics."""

from .base import Sensor, SensorDelegate
from .monitor import Monitor

__all__ = ["Sensor", "SensorDelegate", "Monitor"]
