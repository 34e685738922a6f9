"""Attack: one user makes the agent send notifications without end, to drown the NMS.

Promises: a cadence shorter than the agent's floor is refused with a clear error; each owner's
notifications are limited per minute, the rest counted in cronNotificationsSuppressed, and one
owner's flood never holds back another owner's notification.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent
from cronwrap.agent import mib
from netsnmp import Snmptrapd, free_port, have_netsnmp, snmp

from .support import User, run_as, start_root_agent, tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
]

LIMIT = 20  # [agent] notifications_per_owner in this test's agent.toml
FLOOD = 100


@pytest.fixture
def trapd(shared_base: Path) -> Iterator[Snmptrapd]:
    with Snmptrapd(shared_base / "trapd", mibs=True) as receiver:
        yield receiver


@pytest.fixture
def notifying_agent(attackers: tuple[User, ...], shared_base: Path,
                    trapd: Snmptrapd) -> Iterator[tuple[Agent, str]]:
    config = shared_base / "agent.toml"
    config.write_text(f"[agent]\nnotifications_per_owner = {LIMIT}\n\n"
                      f'[[snmp.target]]\naddress = "127.0.0.1:{trapd.port}"\n'
                      'community = "public"\n')
    config.chmod(0o600)
    address = f"127.0.0.1:{free_port()}"
    agent = start_root_agent(shared_base / "agent", "--config", str(config),
                             "--listen", f"udp:{address}")
    snmp("snmpget", "-v2c", "-c", "public", "-t", "2", "-r", "5", address, "1.3.6.1.2.1.1.3.0")
    yield agent, address
    agent.close()


def send(user: User, agent: Agent, *args: str) -> dict:
    done = run_as(user, *tool("send_events.py", str(agent.socket), *args))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def failed_traps(trapd: Snmptrapd, prefix: str) -> list[str]:
    return [line for line in trapd.text().splitlines()
            if "CRON-JOBS-MIB::cronJobFailed\t" in line
            and f"cronNotifyJobName.0 = STRING: {prefix}" in line]


def test_a_cadence_below_the_floor_is_refused(notifying_agent: tuple[Agent, str],
                                              attackers: tuple[User, ...]) -> None:
    agent, _ = notifying_agent
    reply = send(attackers[0], agent, "every", "storm", "0.001")
    assert reply["ok"] == 0
    assert reply["errors"] == ["'every' of 0.001 s is below the agent's floor of 60 s "
                               "([agent] min_every)"]
    assert send(attackers[0], agent, "every", "minutely", "60")["ok"] == 1
    names = {job["name"] for job in agent.status().values()}
    assert "storm" not in names and "minutely" in names


def test_one_owners_notification_flood_is_capped_and_counted(
        notifying_agent: tuple[Agent, str], attackers: tuple[User, ...],
        trapd: Snmptrapd) -> None:
    agent, address = notifying_agent
    attacker, victim, _ = attackers
    assert send(attacker, agent, "fail", "flood", str(FLOOD))["ok"] == FLOOD
    assert send(victim, agent, "fail", "victim", "1")["ok"] == 1
    trapd.wait_for(r"cronNotifyJobName\.0 = STRING: victim0\t")  # sent after the flood's
    assert len(failed_traps(trapd, "flood")) == LIMIT
    suppressed = mib.scalar_oid(mib.Scalar.cronNotificationsSuppressed) + (0,)
    answer = snmp("snmpget", "-v2c", "-c", "public", "-On", "-t", "2", "-r", "3", address,
                  ".".join(map(str, suppressed))).stdout
    assert answer.strip().endswith(f"Counter32: {FLOOD - LIMIT}"), answer
    lines = [line for line in agent.log.read_text().splitlines()
             if "notifications suppressed" in line]
    assert len(lines) == 1 and f"uid {attacker.uid}" in lines[0], lines
    rows = agent.status()
    assert sum(row["failures"] for key, row in rows.items()
               if key.startswith(f"{attacker.name}/flood")) == FLOOD  # the table has them all
