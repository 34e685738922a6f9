"""The per-job check_snmp of docs/nms/icinga-nagios.md (packaging/nms/) on every cronJobState."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cronwrap.agent.model import JobState
from netsnmp import REPO, have_netsnmp
from standalone_views import AgentRunner, SortedView, runner
from test_prometheus import job

CHECK_SNMP = Path("/usr/lib/nagios/plugins/check_snmp")
CRON_JOB_STATE = "1.3.6.1.4.1.8072.9999.9999.71.1.5.1.13"
# The state read three times: failed(2) CRITICAL, overlapped(4) .. overrunning(7) WARNING; then
# wrapperLost(12) CRITICAL and durationAnomaly(20) WARNING; then ignoredByCron(21) CRITICAL
# (@0:0: no warning), which the first readings' ranges cannot also hold.
THRESHOLDS = ("-w", "@4:7,@20:20,@0:0", "-c", "@2:2,@12:12,@21:21")

__all__ = ["runner"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHECK_SNMP.exists() or not have_netsnmp(),
                       reason="check_snmp (Debian package monitoring-plugins-standard) "
                              "or Net-SNMP is not installed"),
]


def state_oid(owner: str, name: str) -> str:
    index = [len(owner), *owner.encode(), len(name), *name.encode()]
    return ".".join([CRON_JOB_STATE, *map(str, index)])


# What the shipped per-job check (packaging/nms/) makes of every state.
EXPECTED = {"ok": 0, "running": 0, "unknown": 0, "paused": 0, "retired": 0,
            "overlapped": 1, "timedOut": 1, "missed": 1, "overrunning": 1,
            "durationAnomaly": 1, "failed": 2, "wrapperLost": 2, "ignoredByCron": 2}
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL"}


def test_every_state_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == {state.name for state in JobState}


def test_the_shipped_checks_use_these_thresholds() -> None:
    nagios = (REPO / "packaging/nms/nagios4/cronwrap.cfg").read_text()
    icinga = (REPO / "packaging/nms/icinga2/cronwrap.conf").read_text()
    assert " ".join(THRESHOLDS) in nagios
    assert 'vars.snmp_warn = "@4:7,@20:20,@0:0"' in icinga
    assert 'vars.snmp_crit = "@2:2,@12:12,@21:21"' in icinga


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_check_snmp_thresholds_on_cron_job_state(runner: AgentRunner, state: str) -> None:
    agent = runner.start(view=SortedView(job("root", "backup", runs=1, failures=0, state=state,
                                             exit_status=0, last_success=None)))
    host, port = agent.address.split(":")
    oid = state_oid("root", "backup")
    proc = subprocess.run(
        [CHECK_SNMP, "-H", host, "-p", port, "-P", "2c", "-C", "public",
         "-o", f"{oid},{oid},{oid}", *THRESHOLDS, "-l", "root/backup"],
        capture_output=True, text=True, timeout=60, check=False)
    code = EXPECTED[state]
    assert (proc.returncode, proc.stdout.split(" - ")[0]) == (code, f"SNMP {WORDS[code]}"), \
        proc.stdout
    assert f"root/backup={int(JobState[state])};@4:7;@2:2" in proc.stdout
