"""Runs that end too fast, and what a run used, with Debian's real cron running the wrapped
lines: a job with a history of 1.5 s runs that cron then runs 15 times faster, a run shorter
than its --min-duration and a run that touches 60 MB, all in one cron minute.  A real
snmptrapd must receive cronJobDurationAnomaly for the first two (learnedLow, minDuration) and
none for the third, whose cronJobLastMaxRss must be at least 58,000 KiB; cron's own log must
show that it started each line.  About one cron minute.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from agent_support import cronwrap_command, run_cronwrap, wait_for
from cron_support import cron_and_agent, make_root, next_minute, seconds_until, unavailable
from e2e_support import instance
from netsnmp import have_netsnmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

ANOMALY = "cronJobDurationAnomaly"
MB60 = "x = b'\\1' * 60_000_000"  # touched, not only allocated: 60 MB resident
LINES = {"backup": "sleep 0.1", "quick": "--min-duration 2s -- sleep 0.1",
         "big": f'python3 -c "{MB60}"'}


def anomaly(trapd_text: str, name: str) -> str | None:
    """The bound kind of the cronJobDurationAnomaly about root's job `name`, if one came."""
    for line in trapd_text.splitlines():
        if f"{ANOMALY}\t" in line and f"cronNotifyJobName.0 = STRING: {name}\t" in line:
            match = re.search(r"cronNotifyDurationBoundKind\.0 = INTEGER: (\w+\(\d\))", line)
            assert match, line
            return match.group(1)
    return None


def test_cron_runs_a_run_too_fast_one_under_its_minimum_and_a_60_mb_one(tmp_path: Path) -> None:
    root = tmp_path / "agent" / "root"  # where the rig's agent discovers crontabs
    make_root(root)
    wrap = (f"{cronwrap_command()} --config {tmp_path / 'cronwrap.toml'} "
            f"--log-dir {tmp_path / 'logs'} --lock-dir {tmp_path / 'locks'}")
    minute = next_minute(margin=40)  # room for the history's five runs before it
    when = f"{minute.tm_min} {minute.tm_hour} {minute.tm_mday} {minute.tm_mon} *"
    (root / "etc/crontab").write_text(
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
        f"CRONWRAP_SOCKET={tmp_path / 'agent' / 'run' / 'agent.sock'}\n"
        f"CRONWRAP_SPOOL_DIR={tmp_path / 'agent' / 'spool'}\n"
        + "".join(f"{when} root {wrap} -n {name} "
                  f"{command if command.startswith('--') else '-- ' + command}\n"
                  for name, command in LINES.items()))
    with cron_and_agent(tmp_path, root) as (r, journald, _):
        for _ in range(5):  # the history: five successful runs of 1.5 s
            assert run_cronwrap(r.agent, "-n", "backup", "--", "sleep", "1.5").returncode == 0

        def runs(name: str) -> int:
            return int(r.agent.status().get(f"root/{name}", {}).get("runs", 0))

        wait_for(lambda: (runs("backup"), runs("quick"), runs("big")) == (6, 1, 1),
                 "cron's minute of runs", timeout=seconds_until(minute) + 60)
        started = [str(entry["MESSAGE"]) for entry in journald.read("SYSLOG_IDENTIFIER=CRON")
                   if " CMD (" in str(entry["MESSAGE"])]
        for name in LINES:
            assert any(f" -n {name} " in message for message in started), (name, started)
        wait_for(lambda: anomaly(r.trapd.text(), "quick"), "the anomaly of quick")
        wait_for(lambda: anomaly(r.trapd.text(), "backup"), "the anomaly of backup")
        text = r.trapd.text()
        assert (anomaly(text, "backup"), anomaly(text, "quick")) == \
            ("learnedLow(3)", "minDuration(1)")
        assert anomaly(text, "big") is None, "a first run has no bounds"
        states = r.get(*(instance("cronJobState", name) for name in LINES))
        assert states == ["INTEGER: durationAnomaly(20)"] * 2 + ["INTEGER: ok(1)"]
        (rss,) = r.get(instance("cronJobLastMaxRss", "big"))
        assert int(rss.split()[1]) >= 58_000, rss
