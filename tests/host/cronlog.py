"""What Debian's cron says it ran, read from its own log in the journal (cron -L 15).

With `-L 15` cron logs, under SYSLOG_IDENTIFIER=CRON and the pid of the cron child that runs
the job:
    (alice) CMD ([1234] cronwrap -n report -- echo fine)
    (CRON) error (grandchild #1234 failed with exit status 3)       only when it is not 0
    (CRON) info (No MTA installed, discarding output)                only when it printed
    (alice) END ([1234] cronwrap -n report -- echo fine)
A run is identified by the boot and the job's pid (1234), so the count spans reboots.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

CMD = re.compile(r"\((?P<user>[^)]+)\) CMD \(\[(?P<pid>\d+)\] (?P<command>.*)\)")
END = re.compile(r"\((?P<user>[^)]+)\) END \(\[(?P<pid>\d+)\] (?P<command>.*)\)")
FAILED = re.compile(
    r"\(CRON\) error \(grandchild #(?P<pid>\d+) failed with exit status (?P<status>\d+)\)"
)
DISCARDED = "(CRON) info (No MTA installed, discarding output)"
JOB_NAME = re.compile(r"\bcronwrap\b.*?\s-n\s+(\S+)")
OVERLAPPED_EXIT = 75  # cronwrap's exit status when the previous run holds the lock
TIMED_OUT_EXIT = 124
JOURNAL_ARGS = (
    "journalctl", "--no-pager", "--output=json", "SYSLOG_IDENTIFIER=CRON",
    "--output-fields=MESSAGE,SYSLOG_PID,_BOOT_ID",
)


@dataclass
class CronRun:
    """One job cron started: who, which cronwrap job, and how it ended (when it has)."""

    user: str
    job: str
    ended: bool = False
    exit_status: int = 0
    printed: bool = False


@dataclass
class JobTally:
    """Counts for one (user, job), derived only from cron's log, as the MIB defines them."""

    started: int = 0
    runs: int = 0
    failures: int = 0
    overlaps: int = 0
    timeouts: int = 0

    def add(self, run: CronRun) -> None:
        self.started += 1
        if run.exit_status == OVERLAPPED_EXIT:
            self.overlaps += 1
            return
        self.runs += 1
        if run.exit_status != 0:
            self.failures += 1
        if run.exit_status == TIMED_OUT_EXIT:
            self.timeouts += 1


@dataclass
class CronLog:
    """Every cronwrap job cron started, in log order."""

    runs: list[CronRun] = field(default_factory=list)

    def all_ended(self) -> bool:
        return all(run.ended for run in self.runs)

    def tallies(self) -> dict[tuple[str, str], JobTally]:
        """(user, job) -> counts of its finished runs; a run still going is not counted."""
        tallies: dict[tuple[str, str], JobTally] = {}
        for run in self.runs:
            if run.ended:
                tallies.setdefault((run.user, run.job), JobTally()).add(run)
        return tallies

    def exit_statuses(self, user: str, job: str) -> Counter[int]:
        return Counter(
            run.exit_status for run in self.runs if (run.user, run.job) == (user, job) and run.ended
        )


def _message(entry: dict) -> str:
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journalctl gives non-UTF-8 text as a list of bytes
        return bytes(message).decode("utf-8", "replace")
    return str(message)


def parse(journal_json: str) -> CronLog:
    """Build the CronLog from `journalctl -o json SYSLOG_IDENTIFIER=CRON` output."""
    log = CronLog()
    by_job_pid: dict[tuple[str, str], CronRun] = {}
    by_child_pid: dict[tuple[str, str], CronRun] = {}
    for line in journal_json.splitlines():
        entry = json.loads(line)
        boot, child, text = entry.get("_BOOT_ID", ""), entry.get("SYSLOG_PID", ""), _message(entry)
        if started := CMD.fullmatch(text):
            name = JOB_NAME.search(started["command"])
            if name is None:
                continue  # not a cronwrap line (the system's own cron jobs)
            run = CronRun(user=started["user"], job=name.group(1))
            log.runs.append(run)
            by_job_pid[boot, started["pid"]] = run
            by_child_pid[boot, child] = run
        elif failed := FAILED.fullmatch(text):
            if (boot, failed["pid"]) in by_job_pid:
                by_job_pid[boot, failed["pid"]].exit_status = int(failed["status"])
        elif text == DISCARDED:
            if (boot, child) in by_child_pid:
                by_child_pid[boot, child].printed = True
        elif (ended := END.fullmatch(text)) and (boot, ended["pid"]) in by_job_pid:
            by_job_pid[boot, ended["pid"]].ended = True
    return log
