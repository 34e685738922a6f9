"""The cron daemon itself: Debian's real cron stopped, then started again.

The agent watches the private cron through its pid file (/run/crond.pid in cron's private /run).
Three minutely crontab lines; cron is stopped (SIGTERM, as systemctl stop sends it) until the
jobs' next start has passed its grace: snmptrapd receives exactly one cronDaemonNotRunning, the
three misses read cronNotRunning(22) with no cronJobMissed, and cron started again gives one
cronDaemonRunning carrying the misses.  Takes up to a cron minute and a half.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from agent_support import wait_for
from cron_support import cron_and_agent, make_root, unavailable
from e2e_support import ROOT, instance
from netsnmp import have_netsnmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
]

JOBS = ("first", "second", "third")
DAEMON_STATE = f"{ROOT}.1.50.0"
OUTAGE_MISSES = f"{ROOT}.1.53.0"


def test_a_stopped_cron_is_one_alarm_its_misses_carry_the_cause_and_a_start_clears_it(
        tmp_path: Path) -> None:
    root = tmp_path / "agent" / "root"
    make_root(root)
    (root / "etc/cron.d/minutely").write_text("".join(
        f"* * * * * root true  # cronwrap-name={name}\n" for name in JOBS))
    with cron_and_agent(tmp_path, root, watch_cron=True) as (r, _, cron):
        def states() -> dict[str, str]:
            jobs = r.agent.status()
            return {name: jobs[f"root/{name}"]["state"] for name in JOBS
                    if f"root/{name}" in jobs}

        wait_for(lambda: r.get(DAEMON_STATE) == ["INTEGER: running(1)"], "cron seen running")
        # a plain line (no cronwrap) is adopted once cron's log shows its first start: up to a
        # minute away
        wait_for(lambda: len(states()) == len(JOBS), "the crontab's jobs", timeout=90)
        cron.kill()  # SIGTERM: its pid file stays, naming a pid that is gone
        wait_for(lambda: set(states().values()) == {"cronNotRunning"},
                 "the next start missed while cron is down", timeout=100)
        r.trapd.wait_for(r"cronDaemonNotRunning\t")
        assert r.get(DAEMON_STATE) == ["INTEGER: stopped(2)"]
        misses = sum(r.agent.status()[f"root/{name}"]["misses"] for name in JOBS)
        assert misses >= len(JOBS)
        rows = r.get(*(instance("cronJobLastResult", name) for name in JOBS))
        assert rows == ["INTEGER: cronNotRunning(22)"] * len(JOBS)
        assert r.get(OUTAGE_MISSES) == [f"Gauge32: {misses}"]
        cron.start()
        (clear,) = r.trapd.wait_for(r"cronDaemonRunning\t.*", timeout=30)
        assert f"cronDaemonOutageMisses.0 = Gauge32: {misses}" in clear
        assert "cronDaemonState.0 = INTEGER: running(1)" in clear
        text = r.trapd.text()
        assert len(re.findall(r"cronDaemonNotRunning\t", text)) == 1
        assert len(re.findall(r"cronDaemonRunning\t", text)) == 1
        assert "cronJobMissed" not in text, "the misses of the outage raise no alarm of their own"
