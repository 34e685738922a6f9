"""Debian's real cron (-L 15): an overlapping `cronwrap --overlap-exit 0` run gives cron no output.

Two wrapped crontab lines fire at one minute while runs started by hand still hold their locks:
`quiet` with --overlap-exit 0 and `loud` with the default 75. Cron logs "No MTA installed,
discarding output" for every run that printed anything (the host has no MTA), so the journal
must hold exactly one such line, the loud overlap's, while both overlaps reach the agent and
the journal. Takes one cron minute: about a minute.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from agent_support import Agent, cronwrap_command, wait_for
from cron_support import PrivateCron, make_root, next_minute, seconds_until, unavailable
from journald import PrivateJournald, running_journald

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

NO_MTA = "(CRON) info (No MTA installed, discarding output)"
CMD = re.compile(r"\(root\) CMD \(\[(?P<pid>\d+)\] .* -n (?P<job>quiet|loud) .*\)")
END = re.compile(r"\(root\) END \(\[(?P<pid>\d+)\] .* -n (?P<job>quiet|loud) .*\)")


def cron_lines(journald: PrivateJournald) -> list[tuple[str, str]]:
    """(cron's process id, message) of each CRON line: one process logs a job's CMD, its
    output's fate and its END."""
    return [(str(entry["_PID"]), str(entry["MESSAGE"]))
            for entry in journald.read("SYSLOG_IDENTIFIER=CRON")]


def ended(journald: PrivateJournald) -> set[str]:
    return {match["job"] for _, line in cron_lines(journald) if (match := END.fullmatch(line))}


def test_an_overlap_with_exit_0_gives_cron_nothing_to_mail(tmp_path: Path) -> None:
    wrap = (f"{cronwrap_command()} --config {tmp_path / 'cronwrap.toml'} "
            f"--log-dir {tmp_path / 'logs'} --lock-dir {tmp_path / 'locks'}")
    (tmp_path / "cronwrap.toml").write_text("# empty: flags say everything\n")
    root = tmp_path / "root"
    make_root(root)
    gate = tmp_path / "gate"
    agent = Agent(tmp_path / "agent").start()
    holders = []
    try:
        for job in ("quiet", "loud"):
            started = tmp_path / f"{job}.started"
            holders.append(subprocess.Popen(
                [*wrap.split(), "--no-journal", "--socket", str(agent.socket), "-n", job, "--",
                 "sh", "-c", f"touch {started}; while [ ! -e {gate} ]; do sleep 0.1; done"]))
            wait_for(started.exists, f"the {job} run that holds the lock")
        minute = next_minute()
        when = f"{minute.tm_min} {minute.tm_hour} {minute.tm_mday} {minute.tm_mon} *"
        (root / "etc/crontab").write_text(
            f"CRONWRAP_SOCKET={agent.socket}\nCRONWRAP_SPOOL_DIR={agent.spool}\n"
            f"{when} root {wrap} -n quiet --overlap-exit 0 -- true\n"
            f"{when} root {wrap} -n loud -- true\n")
        with running_journald(tmp_path / "journald") as journald, \
                PrivateCron(tmp_path / "cron", journald, root):
            wait_for(lambda: ended(journald) == {"quiet", "loud"}, "cron to run both lines",
                     timeout=seconds_until(minute) + 30)
            check(agent, journald)
    finally:
        gate.touch()
        for holder in holders:
            holder.wait(timeout=30)
        agent.close()


def check(agent: Agent, journald: PrivateJournald) -> None:
    lines = cron_lines(journald)
    cron_pid = {match["job"]: pid for pid, line in lines if (match := CMD.fullmatch(line))}
    job_pid = {match["job"]: match["pid"] for _, line in lines if (match := CMD.fullmatch(line))}
    assert set(cron_pid) == {"quiet", "loud"}
    # cron logs the loud run's output (it has no MTA to mail it to), and nothing for quiet
    assert [pid for pid, line in lines if line == NO_MTA] == [cron_pid["loud"]], lines
    errors = [line for _, line in lines if line.startswith("(CRON) error (grandchild")]
    assert errors == [f"(CRON) error (grandchild #{job_pid['loud']} failed with exit status 75)"]
    status = agent.status()
    assert [status[f"root/{job}"]["overlaps"] for job in ("quiet", "loud")] == [1, 1]
    records = journald.wait_for("JOB_NAME=quiet")
    assert [(r["JOB_STATE"], r["EXIT_STATUS"]) for r in records] == [("overlapped", "0")]
    assert str(records[0]["MESSAGE"]).startswith("cronwrap: job 'quiet' is still running (pid ")
