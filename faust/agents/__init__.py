"""Agents: stream processors with supervisors, sinks and request/reply."""

from .agent import Agent, AgentTestWrapper

__all__ = ["Agent", "AgentTestWrapper"]
