"""Issue 13 item 16: a user filling the disk that holds the agent's state cannot take it down.

Where the state dir shares a file system with a world-writable directory (/var/lib and
/var/tmp on one root file system), any user can fill it. The agent must still start, serve
the jobs it has (SNMP and `cronwrap status`) read-only, refuse events so the wrappers spool
them, say so in one line and in systemd's STATUS, and recover by itself once space returns.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from cronwrap.agent import mib
from cronwrap.wrapper.events import Finished, Started, new_event_id
from netsnmp import free_port, have_netsnmp, snmp

from .support import FAST_AGENT, User, cronwrap_as, owned_dir, run_as, send_as, tool

JOB_COUNT_OID = "." + ".".join(map(str, mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)))


@pytest.fixture
def small_disk(shared_base: Path) -> Iterator[Path]:
    """A 2 MiB file system with a world-writable tmp/ on it (we run as root)."""
    mount = shared_base / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        (mount / "tmp").mkdir(mode=0o1777)
        (mount / "tmp").chmod(0o1777)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class Notifications:
    """The NOTIFY_SOCKET systemd would give the agent: collects its STATUS= lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.statuses: list[str] = []

    def wait_status(self, predicate: object, what: str, limit: float = 30.0) -> str:
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no STATUS {what}; got {self.statuses}"
            self.sock.settimeout(left)
            for line in self.sock.recv(4096).decode().splitlines():
                if line.startswith("STATUS="):
                    self.statuses.append(line)
                    if predicate(line):  # type: ignore[operator]
                        return line


def start_with_notify(agent: Agent, notify: Notifications) -> None:
    agent.crontabs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    with agent.log.open("ab") as log:
        agent.proc = subprocess.Popen(agent.args(), stdout=log, stderr=log, env=env)
    wait_for(agent.ready, "the event socket", proc=agent.proc, log=agent.log)


def a_run(job: str) -> tuple[Started, Finished]:
    start = time.time()
    return (Started(new_event_id(), job, start, 4242),
            Finished(new_event_id(), job, start + 1, 4242, start_time=start, exit_status=0,
                     duration_ms=1000))


@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_agent_starts_read_only_on_a_disk_a_user_filled(attackers: tuple[User, ...],
                                                        shared_base: Path,
                                                        small_disk: Path) -> None:
    attacker, victim, _ = attackers
    port = free_port()
    agent = Agent(shared_base / "agent", extra=[
        *FAST_AGENT, "--state-dir", str(small_disk / "state"),
        "--listen", f"udp:127.0.0.1:{port}"])
    agent.start()
    assert send_as(victim, agent, *a_run("report"), *a_run("report")) == [{"ok": True}] * 4
    assert agent.stop() == 0
    filler = small_disk / "tmp" / "filler"
    filled = run_as(attacker, *tool("fill_disk.py", str(filler)))
    assert filled.returncode == 0, filled.stderr
    notify = Notifications(shared_base / "notify.sock")
    work = owned_dir(shared_base / "work", victim)
    try:
        start_with_notify(agent, notify)
        notify.wait_status(lambda line: "read-only" in line, "saying the state is read-only")
        answer = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "2", "-r", "1",
                      f"127.0.0.1:{port}", JOB_COUNT_OID)
        assert answer.stdout.strip() == f"{JOB_COUNT_OID} = Gauge32: 1"
        assert agent.status()[f"{victim.name}/report"]["runs"] == 2
        for _ in range(2):
            run = cronwrap_as(victim, agent, "--log-dir", str(work / "log"), "--lock-dir",
                              str(work / "lock"), "-n", "report", "--", "true")
            assert run.returncode == 0, run.stderr
        victim_spool = agent.spool / str(victim.uid)
        assert len(list(victim_spool.glob("*.json"))) == 4  # refused, so spooled: none lost
        log_while_full = agent.log.read_text()
        assert run_as(attacker, "rm", str(filler)).returncode == 0
        wait_for(lambda: not list(victim_spool.glob("*.json")), "the spool drained",
                 proc=agent.proc, log=agent.log)
        assert agent.status()[f"{victim.name}/report"]["runs"] == 4
        notify.wait_status(lambda line: "read-only" not in line, "back to normal")
        assert "works again" in agent.log.read_text()
    finally:
        agent.close()
        notify.sock.close()
    assert "Traceback" not in agent.log.read_text()
    outage = [line for line in log_while_full.splitlines() if "ERROR" in line]
    assert len(outage) == 1 and "read-only" in outage[0], outage
