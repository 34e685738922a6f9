"""Output that goes nowhere: Debian's real cron on a host without an MTA discards what a job
prints ("No MTA installed, discarding output"); the agent counts it per job.

Two cron minutes of three lines: one prints, one prints and fails, one is quiet.  The counts in
cronJobOutputsDiscarded must equal the MTA lines cron logged for each job's runs (tied by the
pid of the process that logged the run's CMD, restated here from journalctl's fields), the quiet
job's count stays 0, and snmptrapd receives cronJobOutputDiscarded once per printing job, not
once per run.  Needs a host without /usr/sbin/sendmail (cron checks that path).  Takes two
cron minutes: about two and a half minutes.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from agent_support import cronwrap_command, wait_for
from cron_support import cron_and_agent, make_root, next_minute, seconds_until, unavailable
from e2e_support import TABLE, parse_table_walk
from journald import PrivateJournald
from netsnmp import have_netsnmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
    pytest.mark.skipif(os.path.exists("/usr/sbin/sendmail"), reason="this host has an MTA"),
]

NO_MTA = "(CRON) info (No MTA installed, discarding output)"
CMD = re.compile(r"\(root\) CMD \(\[\d+\] .*# cronwrap-name=(?P<name>\w+)\)")
LINES = {"printer": "echo hello", "failing": "echo oops; exit 3", "quiet": "true"}


def discarded_by_cron(journald: PrivateJournald) -> Counter[str]:
    """Job name -> MTA lines cron logged for its runs: the line's _PID logged the run's CMD."""
    started: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for entry in journald.read("SYSLOG_IDENTIFIER=CRON", "_UID=0"):
        message, pid = str(entry["MESSAGE"]), str(entry["_PID"])
        if match := CMD.fullmatch(message):
            started[pid] = match["name"]
        elif message == NO_MTA:
            counts[started[pid]] += 1
    return counts


def test_output_cron_discards_is_counted_per_job(tmp_path: Path) -> None:
    root = tmp_path / "agent" / "root"
    make_root(root)
    (root / "etc/cron.d/printing").write_text("".join(
        f"* * * * * root {command}  # cronwrap-name={name}\n" for name, command in LINES.items()))
    minute = next_minute()
    with cron_and_agent(tmp_path, root) as (r, journald, _):
        def runs(name: str) -> int:
            return int(r.agent.status().get(f"root/{name}", {}).get("runs", 0))

        wait_for(lambda: all(runs(name) == 2 for name in LINES), "two minutes of runs",
                 timeout=seconds_until(minute) + 100)
        by_cron = discarded_by_cron(journald)
        assert by_cron == {"printer": 2, "failing": 2}, by_cron
        wait_for(lambda: all(r.agent.status()[f"root/{name}"]["outputs_discarded"] == count
                             for name, count in by_cron.items()), "the counts")
        rows = parse_table_walk(r.walk("snmpwalk", TABLE))
        assert {name: rows[name]["cronJobOutputsDiscarded"] for name in LINES} == \
            {"printer": "2", "failing": "2", "quiet": "0"}
        for name in by_cron:
            r.trapd.wait_for(rf"cronJobOutputDiscarded\t.*cronNotifyJobName\.0 = STRING: {name}\t")
        sent = re.findall(r"cronJobOutputDiscarded\t.*?cronNotifyJobName\.0 = STRING: (\w+)\t",
                          r.trapd.text())
        assert sorted(sent) == ["failing", "printer"], "once per job, not once per run"
