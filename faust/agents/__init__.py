"""Agents: stream processors with supervisors, sinks and request/reply."""

from .agent import Agent
from .testing import AgentTestWrapper

__all__ = ["Agent", "AgentTestWrapper"]
