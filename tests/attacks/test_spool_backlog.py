"""Issue 18: a big spool never keeps the agent dark; it serves first and catches up after.

One user spools 50,000 valid events while the agent is down (as if they had kept the agent
busy, or written them on purpose). At the next start the agent must be READY (sd_notify, to a
socket the test binds as systemd would), answer SNMP and `cronwrap status`, and take another
user's live event, while the drain still has most of the flood to do; another user's own
spooled runs must not wait behind the flood (one slice at most per turn). In the end every
event is counted exactly once and the spool is empty. Everything is checked by order and
counts: what the agent says at READY, at the other user's reply, when the other user's
spooled runs are all in.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Finished, Started, new_event_id
from netsnmp import free_port, snmp

from .support import FAST_AGENT, User, cronwrap_as, run_as, send_as, tool

pytestmark = pytest.mark.slow

FLOOD = 50_000
OTHER_SPOOLED = 300
BACKLOG_OID = "1.3.6.1.4.1.8072.9999.9999.71.1.43.0"  # cronSpoolBacklog.0
ACCEPTED_OID = "1.3.6.1.4.1.8072.9999.9999.71.1.2.0"  # cronEventsAccepted.0


def spool_many(user: User, agent: Agent, job: str, count: int) -> None:
    result = run_as(user, *tool("spool_many.py", str(agent.spool), job, str(count)),
                    timeout=600)
    assert result.returncode == 0, result.stderr


def snmp_value(port: int, oid: str) -> int:
    out = snmp("snmpget", "-v2c", "-c", "public", "-Oqv", f"udp:127.0.0.1:{port}", oid).stdout
    return int(out.strip())


def status(agent: Agent) -> dict[str, object]:
    """Root's status reply as the agent sends it (with its spool_backlog)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(str(agent.socket))
        sock.sendall(b'{"v":1,"type":"status","jobs":[]}\n')
        reply = json.loads(sock.makefile("rb").readline())
    assert reply["ok"], reply
    return reply


def runs(reply: dict[str, object], user: User, job: str) -> int:
    jobs = {(j["owner"], j["name"]): j for j in reply["jobs"]}  # type: ignore[union-attr]
    return jobs.get((user.name, job), {}).get("runs", 0)


def wait_ready(notify: socket.socket) -> None:
    notify.settimeout(300)
    while b"READY=1" not in notify.recv(4096):
        pass


def keep_reading(notify: socket.socket) -> threading.Thread:
    """Read what the agent sends after READY (STATUS= lines), as systemd does: sd_notify
    blocks when the socket's queue is full."""
    def read() -> None:
        with contextlib.suppress(OSError):
            while notify.recv(4096):
                pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


@pytest.mark.timeout(900)
def test_a_big_spool_never_keeps_the_agent_dark(attackers: tuple[User, ...],
                                                shared_base: Path) -> None:
    # today's drain takes directories in name order: the flooder's goes first
    flooder, other = sorted(attackers[:2], key=lambda user: str(user.uid))
    port = free_port()
    config = shared_base / "agent.toml"
    config.write_text("[agent]\nspool_events_per_second = 4000\n")  # the drain may go fast
    notify_path = shared_base / "notify.sock"
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config),
                                          "--listen", f"udp:127.0.0.1:{port}"],
                  env={**os.environ, "NOTIFY_SOCKET": str(notify_path)})
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        agent.start()
        wait_ready(notify)
        assert agent.stop() == 0
        while select.select([notify], [], [], 0)[0]:  # what the first run sent
            notify.recv(4096)
        spool_many(flooder, agent, "flood", FLOOD)
        spool_many(other, agent, "mine", OTHER_SPOOLED)
        agent.start()
        try:
            wait_ready(notify)
            at_ready = status(agent)
            keep_reading(notify)
            assert runs(at_ready, flooder, "flood") < FLOOD, "READY only after the drain"
            # SNMP answers, and shows the backlog once the first pass has counted it (READY may
            # come before that pass starts), while the flood is still far from drained
            wait_for(lambda: snmp_value(port, BACKLOG_OID) > 0, "the backlog gauge over SNMP",
                     proc=agent.proc, log=agent.log)
            assert runs(status(agent), flooder, "flood") < FLOOD, "shown only at the end"
            shown = cronwrap_as(flooder, agent, "status", "flood")  # the user is told too
            assert shown.returncode == 0 and "catching up" in shown.stderr, shown.stderr

            start = Started(new_event_id(), "live", 1_800_000_000.0, os.getpid())
            end = Finished(new_event_id(), "live", 1_800_000_001.0, os.getpid(),
                           start_time=start.time, duration_ms=1000)
            assert [r["ok"] for r in send_as(other, agent, start, end)] == [True, True]
            after_live = status(agent)
            assert runs(after_live, other, "live") == 1
            assert after_live.get("spool_backlog", 0) > 0, "the live event waited for the drain"

            wait_for(lambda: runs(status(agent), other, "mine") == OTHER_SPOOLED,
                     "the other user's spooled runs", timeout=300, proc=agent.proc, log=agent.log)
            behind = status(agent)
            assert runs(behind, flooder, "flood") < FLOOD, \
                "the other user's spooled runs waited behind the whole flood"

            wait_for(lambda: runs(status(agent), flooder, "flood") >= FLOOD,
                     "the flood drained", timeout=600, proc=agent.proc, log=agent.log)
            wait_for(lambda: snmp_value(port, BACKLOG_OID) == 0, "the backlog gauge back at 0",
                     proc=agent.proc, log=agent.log)
            final = status(agent)
            assert runs(final, flooder, "flood") == FLOOD
            assert runs(final, other, "mine") == OTHER_SPOOLED
            assert runs(final, other, "live") == 1
            assert "spool_backlog" not in final
            assert snmp_value(port, ACCEPTED_OID) == FLOOD + OTHER_SPOOLED + 2
            assert not list(agent.spool.glob("*/*.json"))
        finally:
            agent.close()
    assert "Traceback" not in agent.log.read_text()
