"""Sensors: hooks called as events flow, the in-memory Monitor, Prometheus metrics."""
