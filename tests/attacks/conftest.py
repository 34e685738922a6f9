"""Fixtures for the attack tests: the test users, a shared dir they can reach, a root agent,
a standalone agent answering SNMP on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent
from netsnmp import free_port, snmp

from .support import (
    ATTACKERS,
    User,
    check_reachable,
    ensure_user,
    shared_dir,
    skip_reason,
    start_root_agent,
)


@pytest.fixture(scope="session")
def attackers() -> tuple[User, User, User]:
    """cwattack1..3, created if missing; each can run this venv's python."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    users = tuple(ensure_user(name) for name in ATTACKERS)
    for user in users:
        check_reachable(user)
    return users  # type: ignore[return-value]


@pytest.fixture(scope="session")
def nobody(attackers: tuple[User, ...]) -> User:
    return User.named("nobody")


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A temp dir every test user can traverse, removed afterwards."""
    base = shared_dir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def root_agent(attackers: tuple[User, ...], shared_base: Path) -> Iterator[Agent]:
    """A real cronwrap-agent running as root on paths the test users can reach."""
    agent = start_root_agent(shared_base / "agent")
    yield agent
    agent.close()


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[Agent, int]]:
    """An agent answering SNMP itself (--listen) on a free loopback port, once it answers."""
    port = free_port()
    agent = Agent(tmp_path, extra=["--listen", f"udp:127.0.0.1:{port}"]).start()
    snmp("snmpget", "-v2c", "-c", "public", "-t", "2", "-r", "5", f"127.0.0.1:{port}",
         "1.3.6.1.2.1.1.3.0")  # answering: the standalone front end is up
    yield agent, port
    agent.close()
