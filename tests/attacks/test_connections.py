"""Attacks on the event socket's capacity: one user's connections and unread replies.

Promises: one user's open connections cannot lock other users (or root) out of the agent, and
status replies a client never reads do not grow the agent's memory.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, request, wait_for
from cronwrap.wrapper.events import Finished, Started, new_event_id

from .support import User, start_as, start_root_agent, stop, tool

pytestmark = pytest.mark.integration

PER_UID = 32  # [agent] max_connections_per_uid, the default


@pytest.fixture
def patient_agent(attackers: tuple[User, ...], shared_base: Path) -> Iterator[Agent]:
    """A root agent that lets idle clients wait a minute, so held connections stay held, and
    takes a thousand events at once (the attacker's rows for the unread replies)."""
    config = shared_base / "agent.toml"
    config.write_text("[agent]\nread_timeout = 60.0\nevents_per_second_per_owner = 1000\n")
    agent = start_root_agent(shared_base / "agent", "--config", str(config))
    yield agent
    agent.close()


def first_line(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the attack tool printed nothing"
    line = proc.stdout.readline()
    assert line, f"the attack tool ended: {proc.stderr.read() if proc.stderr else ''}"
    return line.strip()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def root_run_is_acked(agent: Agent, name: str) -> None:
    now = time.time()
    for event in (Started(new_event_id(), name, now, os.getpid()),
                  Finished(new_event_id(), name, now, os.getpid(), start_time=now,
                           duration_ms=1)):
        assert request(agent.socket, event.to_wire(), timeout=30) == {"ok": True}


def test_one_users_connections_do_not_lock_out_others(patient_agent: Agent,
                                                      attackers: tuple[User, ...]) -> None:
    attacker, neighbour, _ = attackers
    flood = start_as(attacker, *tool("flood_socket.py", "hold", str(patient_agent.socket), "600"))
    try:
        assert first_line(flood) == f"admitted {PER_UID} refused {600 - PER_UID}"
        other = start_as(neighbour,
                         *tool("flood_socket.py", "hold", str(patient_agent.socket), "10"))
        try:
            assert first_line(other) == "admitted 10 refused 0"
        finally:
            stop(other)
        root_run_is_acked(patient_agent, "under-flood")
        assert patient_agent.status("under-flood")["root/under-flood"]["runs"] == 1
    finally:
        stop(flood)
    log = patient_agent.log.read_text()
    assert log.count("refused a connection") == 1  # one line for 568 refusals


def test_unread_status_replies_do_not_grow_the_agent(patient_agent: Agent,
                                                     attackers: tuple[User, ...]) -> None:
    attacker = attackers[0]
    assert patient_agent.proc is not None
    pid = patient_agent.proc.pid
    flood = start_as(attacker, *tool("flood_socket.py", "unread", str(patient_agent.socket),
                                     "1000", "30"))
    try:
        assert first_line(flood) == "sent"
        before = rss_kib(pid)
        peak = before
        deadline = time.monotonic() + 3.0  # the old agent had built every reply by then
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        # 30 replies of 4.3 MB each were ~130 MB buffered at once; one at a time now.
        assert peak - before < 48 * 1024, f"RSS grew {(peak - before) // 1024} MiB"
        root_run_is_acked(patient_agent, "beside-unread")
    finally:
        stop(flood)
    wait_for(lambda: patient_agent.status("beside-unread"), "root's status still answered")
