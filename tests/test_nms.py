"""docs/nms.md's check_snmp example (Nagios/Icinga) against the standalone agent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cronwrap.agent.model import JobState
from netsnmp import have_netsnmp
from standalone_views import AgentRunner, SortedView, runner
from test_prometheus import job

CHECK_SNMP = Path("/usr/lib/nagios/plugins/check_snmp")
CRON_JOB_STATE = "1.3.6.1.4.1.8072.9999.9999.71.1.5.1.13"
# The thresholds docs/nms.md gives: failed(2) CRITICAL; overlapped(4) .. overrunning(7) WARNING.
THRESHOLDS = ("-w", "@4:7", "-c", "@2:2")

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


@pytest.mark.parametrize(("state", "code", "word"), [
    ("ok", 0, "OK"), ("running", 0, "OK"), ("unknown", 0, "OK"),
    ("overlapped", 1, "WARNING"), ("timedOut", 1, "WARNING"), ("missed", 1, "WARNING"),
    ("overrunning", 1, "WARNING"), ("failed", 2, "CRITICAL"),
])
def test_check_snmp_thresholds_on_cron_job_state(runner: AgentRunner, state: str, code: int,
                                                 word: str) -> None:
    agent = runner.start(view=SortedView(job("root", "backup", runs=1, failures=0, state=state,
                                             exit_status=0, last_success=None)))
    host, port = agent.address.split(":")
    proc = subprocess.run(
        [CHECK_SNMP, "-H", host, "-p", port, "-P", "2c", "-C", "public",
         "-o", state_oid("root", "backup"), *THRESHOLDS, "-l", "root/backup"],
        capture_output=True, text=True, timeout=60, check=False)
    value = int(JobState[state])
    assert (proc.returncode, proc.stdout.split(" - ")[0]) == (code, f"SNMP {word}"), proc.stdout
    assert f"root/backup={value};@4:7;@2:2" in proc.stdout


@pytest.mark.parametrize(("state", "code", "word"), [
    ("wrapperLost", 2, "CRITICAL"), ("failed", 0, "OK"), ("ok", 0, "OK")])
def test_check_snmp_second_check_for_a_lost_wrapper(runner: AgentRunner, state: str, code: int,
                                                   word: str) -> None:
    # wrapperLost(12) is outside the ranges above: docs/nms.md adds a second check, -c @12:12
    agent = runner.start(view=SortedView(job("root", "backup", runs=1, failures=0, state=state,
                                             exit_status=0, last_success=None)))
    host, port = agent.address.split(":")
    proc = subprocess.run(
        [CHECK_SNMP, "-H", host, "-p", port, "-P", "2c", "-C", "public",
         "-o", state_oid("root", "backup"), "-c", "@12:12", "-l", "root/backup"],
        capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout.split(" - ")[0]) == (code, f"SNMP {word}"), proc.stdout
