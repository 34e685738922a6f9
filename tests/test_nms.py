"""The check_snmp services of docs/nms/icinga-nagios.md (packaging/nms/) on every cronJobState
and every cronDaemonState."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cronwrap.agent import mib
from cronwrap.agent.model import CronDaemonState, JobState
from netsnmp import REPO, have_netsnmp
from pysnmp.proto import rfc1902
from standalone_views import AgentRunner, SortedView, runner
from test_prometheus import job

CHECK_SNMP = Path("/usr/lib/nagios/plugins/check_snmp")
CRON_JOB_STATE = "1.3.6.1.4.1.8072.9999.9999.71.1.5.1.13"
# The state read three times: failed(2) CRITICAL, overlapped(4) .. overrunning(7) WARNING; then
# wrapperLost(12) CRITICAL and durationAnomaly(20) WARNING; then ignoredByCron(21) CRITICAL
# (@0:0: no warning), which the first readings' ranges cannot also hold.
THRESHOLDS = ("-w", "@4:7,@20:20,@0:0", "-c", "@2:2,@12:12,@21:21")
CRON_DAEMON_STATE = "1.3.6.1.4.1.8072.9999.9999.71.1.50.0"
DAEMON_THRESHOLDS = ("-w", "@5:6", "-c", "@2:4")

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
            "durationAnomaly": 1, "failed": 2, "wrapperLost": 2, "ignoredByCron": 2,
            # a start that fell while cron was down: the "cron daemon" service is its alarm
            "cronNotRunning": 0}
# What the shipped "cron daemon" check makes of every cronDaemonState.
DAEMON_EXPECTED = {"running": 0, "stopped": 2, "failed": 2, "masked": 2, "absent": 1,
                   "unknown": 1}
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL"}


def test_every_state_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == {state.name for state in JobState}
    assert set(DAEMON_EXPECTED) == {state.name for state in CronDaemonState}
    scalar = (*mib.scalar_oid(mib.Scalar.cronDaemonState), 0)
    assert ".".join(map(str, scalar)) == CRON_DAEMON_STATE


def test_the_shipped_checks_use_these_thresholds() -> None:
    nagios = (REPO / "packaging/nms/nagios4/cronwrap.cfg").read_text()
    icinga = (REPO / "packaging/nms/icinga2/cronwrap.conf").read_text()
    assert " ".join(THRESHOLDS) in nagios
    assert 'vars.snmp_warn = "@4:7,@20:20,@0:0"' in icinga
    assert 'vars.snmp_crit = "@2:2,@12:12,@21:21"' in icinga
    assert f"-o {CRON_DAEMON_STATE} {' '.join(DAEMON_THRESHOLDS)}" in nagios
    assert f'vars.snmp_oid = "{CRON_DAEMON_STATE}"' in icinga
    assert 'vars.snmp_warn = "@5:6"' in icinga and 'vars.snmp_crit = "@2:4"' in icinga


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


@pytest.mark.parametrize("state", sorted(DAEMON_EXPECTED))
def test_check_snmp_thresholds_on_cron_daemon_state(runner: AgentRunner, state: str) -> None:
    oid = tuple(map(int, CRON_DAEMON_STATE.split(".")))
    agent = runner.start(view=SortedView({oid: rfc1902.Integer32(CronDaemonState[state])}))
    host, port = agent.address.split(":")
    proc = subprocess.run(
        [CHECK_SNMP, "-H", host, "-p", port, "-P", "2c", "-C", "public",
         "-o", CRON_DAEMON_STATE, *DAEMON_THRESHOLDS, "-l", "cron daemon"],
        capture_output=True, text=True, timeout=60, check=False)
    code = DAEMON_EXPECTED[state]
    assert (proc.returncode, proc.stdout.split(" - ")[0]) == (code, f"SNMP {WORDS[code]}"), \
        proc.stdout
    assert f"'cron daemon'={int(CronDaemonState[state])};@5:6;@2:4" in proc.stdout
