"""The standalone agent's reads keep to the requester's VACM read view, however it is cut.

The responders ask VACM once per subtree of the served view when no view family reaches below
that subtree's root, and per varbind otherwise; these give the read community views that cut
the cronwrap table (a column left out, the whole subtree left out, only a column let in) and
walk them with Net-SNMP's own clients.
"""

from __future__ import annotations

import asyncio

import pytest
from cronwrap.agent import mib
from netsnmp import have_netsnmp, snmp
from pysnmp.entity import config as snmp_config
from standalone_views import (
    FAILURES,
    SUBTREE,
    AgentRunner,
    RunningAgent,
    SortedView,
    job_rows,
    row_index,
    runner,
)
from test_standalone import SYSTEM, oid_text, walk_lines

__all__ = ["runner"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
]

EVERYTHING = (1, 3, 6, 1)
SYSTEM_GROUP = [(1, 3, 6, 1, 2, 1, 1, n, 0) for n in range(1, 7)]


def narrow_view(runner: AgentRunner, agent: RunningAgent, *families: tuple[str, tuple[int, ...]]
                ) -> None:
    """Make the read community's (community1's) read view just `families` ("included" or
    "excluded", subtree), configured in the running engine as pysnmp's VACM tables hold it."""
    async def configure() -> None:
        engine = agent.frontend.engine
        snmp_config.add_vacm_group(engine, "narrow", 2, "community1")
        snmp_config.add_vacm_access(engine, "narrow", b"", 2, "noAuthNoPriv", "exact",
                                    "narrow-read", "", "")
        for kind, subtree in families:
            snmp_config.add_vacm_view(engine, "narrow-read", kind, subtree, b"")

    asyncio.run_coroutine_threadsafe(configure(), runner.loop).result(30)


def walk(agent: RunningAgent, tool: str, root: tuple[int, ...] = EVERYTHING
         ) -> list[tuple[int, ...]]:
    """The OIDs a walk shows values for (a walk that finds nothing under `root` asks for
    `root` itself, whose noSuchObject is no value)."""
    pairs = walk_lines(tool, "-v2c", "-c", "public", "-Cc", agent.address, oid_text(root))
    return [oid for oid, value in pairs if not value.startswith("No Such Object")]


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
def test_a_column_left_out_of_the_view_is_never_shown(runner: AgentRunner, tool: str) -> None:
    values = job_rows(30)
    agent = runner.start(view=SortedView(values))
    assert walk(agent, tool) == SYSTEM_GROUP + sorted(values)  # before the view is cut
    narrow_view(runner, agent, ("included", EVERYTHING), ("excluded", FAILURES))
    expected = [oid for oid in sorted(values) if oid[: len(FAILURES)] != FAILURES]
    assert len(expected) == len(values) - 30
    assert walk(agent, tool) == SYSTEM_GROUP + expected
    assert walk(agent, tool, FAILURES) == []
    cell = oid_text(FAILURES + row_index("root", "job-00002"))
    out = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "2", agent.address, cell,
               f"{SYSTEM}.5.0").stdout.splitlines()
    assert out[0] == f".{cell} = No Such Object available on this agent at this OID"
    assert out[1].startswith(f".{SYSTEM}.5.0 = STRING:")


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
def test_a_subtree_left_out_of_the_view_is_stepped_over(runner: AgentRunner, tool: str) -> None:
    agent = runner.start(view=SortedView(job_rows(2_000)))
    narrow_view(runner, agent, ("included", EVERYTHING), ("excluded", SUBTREE))
    assert walk(agent, tool) == SYSTEM_GROUP
    assert walk(agent, tool, SUBTREE) == []


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
def test_a_view_of_one_column_shows_that_column_only(runner: AgentRunner, tool: str) -> None:
    values = job_rows(30)
    agent = runner.start(view=SortedView(values))
    last = mib.column_oid(mib.VALUE_COLUMNS[-1])
    narrow_view(runner, agent, ("included", FAILURES), ("included", last))
    expected = [oid for oid in sorted(values)
                if oid[: len(FAILURES)] == FAILURES or oid[: len(last)] == last]
    assert len(expected) == 60
    assert walk(agent, tool) == expected
