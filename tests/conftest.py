"""Fixtures shared by several test modules: `agent`, a running cronwrap-agent."""

pytest_plugins = ("agent_support",)
