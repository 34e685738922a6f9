"""End to end without snmpd: cronwrap -> cronwrap-agent --listen -> managers, trap receivers."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_support import cronwrap_command
from cronwrap.agent import mib
from e2e_support import (
    BAD,
    COUNT,
    GOOD,
    ROOT,
    assert_rows,
    parse_table_walk,
    received,
    rig,
    run_good_and_bad,
)
from netsnmp import free_port, have_netsnmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]


def test_v2c_walk_of_the_standalone_agent_shows_the_counts(tmp_path: Path) -> None:
    with rig(tmp_path, agentx=False, listen=True) as r:
        before, after = run_good_and_bad(r)
        assert r.get(COUNT, "CRON-JOBS-MIB::cronEventsAccepted.0") == [
            "Gauge32: 2", f"Counter32: {2 * (GOOD + BAD)}"]
        walked = r.walk("snmpwalk", "CRON-JOBS-MIB::cronJobTable")
        assert r.walk("snmpbulkwalk", "CRON-JOBS-MIB::cronJobTable") == walked
        assert_rows(parse_table_walk(walked), before, after)


def varbinds(walked: str) -> list[str]:
    """The varbind lines of a walk. Our subtree ends the standalone agent's MIB view, so its
    walk ends with the endOfMibView answer that snmpwalk prints (snmpd has more after it)."""
    lines = walked.splitlines()
    if lines and lines[-1].endswith("= No more variables left in this MIB View "
                                    "(It is past the end of the MIB tree)"):
        assert lines[-1].split(" = ")[0] == lines[-2].split(" = ")[0]  # named by the last OID
        lines.pop()
    return lines


def test_agentx_and_listener_walks_are_identical(tmp_path: Path) -> None:
    with rig(tmp_path, agentx=True, listen=True) as r:
        assert r.master is not None
        run_good_and_bad(r)
        assert r.wrap("-n", "slow", "--timeout", "1s", "--", "sleep", "30").returncode == 124
        r.wait_for_runs("slow", 1, address=r.listener)
        for tool in ("snmpwalk", "snmpbulkwalk"):
            through_snmpd = varbinds(r.walk(tool, ROOT, "-On", mibs=False))
            direct = varbinds(r.walk(tool, ROOT, "-On", address=r.listener, mibs=False))
            runs = GOOD + BAD + 1  # each kept in cronJobRunTable (5 per job by default)
            assert len(through_snmpd) == len(mib.Scalar) + 3 * len(mib.VALUE_COLUMNS) \
                + runs * len(mib.RUN_VALUE_COLUMNS)
            assert through_snmpd == direct


def test_a_failing_job_traps_from_the_standalone_agent(tmp_path: Path) -> None:
    port = free_port()
    config = f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\ncommunity = "public"\n'
    with rig(tmp_path, agentx=False, listen=True, trap_port=port, config=config) as r:
        assert (tmp_path / "agent.toml").stat().st_mode & 0o777 == 0o600
        assert r.wrap("-n", "nightly", "--", "sh", "-c", "exit 3").returncode == 3
        line = received(r.trapd, "cronJobFailed", "nightly")
        assert 'cronJobLastExitStatus."root"."nightly" = INTEGER: 3' in line
        assert 'cronJobFailures."root"."nightly" = Counter32: 1' in line
