"""What Debian cron's log lines say about jobs: each of its messages parsed into a small
immutable line (a start, an end, a failure, output that went nowhere), or None."""

from __future__ import annotations

import re
from dataclasses import dataclass

# a pid has at most 7 digits (pid_max <= 2^22): "(alice) CMD ([99999999999999999999] x)" is -L 1's
_START = re.compile(r"\((?P<user>[^)]+)\) CMD \(\[(?P<pid>\d{1,7})\] (?P<command>.*)\)")
_START_NO_PID = re.compile(r"\((?P<user>[^)]+)\) CMD \((?P<command>.*)\)")
_END = re.compile(r"\((?P<user>[^)]+)\) END \(\[(?P<pid>\d{1,7})\] (?P<command>.*)\)")
_EXIT = re.compile(r"\(CRON\) error \(grandchild #(?P<pid>\d{1,7}) failed with exit status "
                   r"(?P<status>\d{1,3})\)")
_KILLED = re.compile(r"\(CRON\) error \(grandchild #(?P<pid>\d{1,7}) terminated by signal "
                     r"(?P<signal>\d{1,3})(?:, dumped core)?\)")
_NO_MTA = "(CRON) info (No MTA installed, discarding output)"
_MAIL_FAILED = re.compile(r"\([^)]+\) MAIL \(mailed \d+ bytes? of output but got status "
                          r"0x[0-9a-fA-F]+ from MTA\)")


@dataclass(frozen=True)
class JobStarted:
    """`(user) CMD ([pid] command)`; pid None: cron logs starts without pids (-L 1)."""

    user: str
    command: str
    pid: int | None


@dataclass(frozen=True)
class JobEnded:
    """`(user) END ([pid] command)`."""

    user: str
    command: str
    pid: int


@dataclass(frozen=True)
class JobFailed:
    """`(CRON) error (grandchild #pid ...)`: a non-zero exit status, or the killing signal."""

    pid: int
    status: int = 0
    signal: int = 0


@dataclass(frozen=True)
class OutputLost:
    """`No MTA installed, discarding output`, or the MTA failed: the run's output went nowhere."""


CronLine = JobStarted | JobEnded | JobFailed | OutputLost


def parse(message: str) -> CronLine | None:
    """What one of cron's messages says about a job; None for anything else (PAM, ...)."""
    if message == _NO_MTA or _MAIL_FAILED.fullmatch(message):
        return OutputLost()
    if match := _START.fullmatch(message):
        return JobStarted(match["user"], match["command"], int(match["pid"]))
    if match := _END.fullmatch(message):
        return JobEnded(match["user"], match["command"], int(match["pid"]))
    if match := _EXIT.fullmatch(message):
        return JobFailed(int(match["pid"]), status=int(match["status"]))
    if match := _KILLED.fullmatch(message):
        return JobFailed(int(match["pid"]), signal=int(match["signal"]))
    if match := _START_NO_PID.fullmatch(message):
        return JobStarted(match["user"], match["command"], None)
    return None
