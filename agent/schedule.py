"""Expected start times: cron arithmetic (croniter) and discovery of cronwrap jobs in crontabs."""

from __future__ import annotations

import functools
import logging
import os
import pwd
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter
from cronwrap.wrapper.events import Cadence, is_valid_job_name

from .model import JobKey

log = logging.getLogger(__name__)

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
NAME_OPTIONS = ("-n", "--name")


@dataclass(frozen=True)
class Discovered:
    """A cronwrap job found on a crontab line."""

    key: JobKey
    owner: str
    schedule: str


def is_valid_schedule(expr: str) -> bool:
    return croniter.is_valid(NICKNAMES.get(expr, expr))


def next_after(cadence: Cadence, after: float) -> float | None:
    """The first expected start strictly after `after`, None without a schedule or period."""
    if cadence.schedule and is_valid_schedule(cadence.schedule):
        expr = NICKNAMES.get(cadence.schedule, cadence.schedule)
        return float(croniter(expr, after).get_next(float))
    if cadence.every:
        return after + cadence.every
    return None


def period(cadence: Cadence, at: float) -> float | None:
    """The interval between the two expected starts following `at`."""
    first = next_after(cadence, at)
    if first is None:
        return None
    second = next_after(cadence, first)
    return None if second is None else second - first


def refusal(cadence: Cadence) -> str | None:
    """Why the agent refuses a declared cadence, None if it does not: a schedule must be cron
    syntax that fires on some date (`0 0 30 2 *` never does: no start could be expected)."""
    return _schedule_refusal(cadence.schedule) if cadence.schedule else None


@functools.lru_cache(maxsize=1024)
def _schedule_refusal(expr: str) -> str | None:
    if not is_valid_schedule(expr):
        return f"schedule {expr!r} is not a cron expression"
    try:
        upcoming = next_after(Cadence(schedule=expr), time.time())
    except ValueError:  # croniter gives up on a schedule that matches no date
        upcoming = None
    return None if upcoming is not None else f"schedule {expr!r} never fires"


def discover(root: Path) -> dict[JobKey, Discovered]:
    """Every cronwrap job (`-n NAME`, `--name NAME`, `--name=NAME`) in system and user crontabs."""
    found: dict[JobKey, Discovered] = {}
    system = [p for p in [root / "etc/crontab"] if p.exists()] + _cron_d_files(root / "etc/cron.d")
    for path in system:
        for user, schedule, command in _lines(path, with_user=True):
            _add(found, user, schedule, command, path)
    spool = root / "var/spool/cron/crontabs"
    if spool.is_dir():
        for path in sorted(spool.iterdir()):
            if path.is_file() and not path.is_symlink():
                for _, schedule, command in _lines(path, with_user=False):
                    _add(found, path.name, schedule, command, path)
    return found


def _cron_d_files(directory: Path) -> list[Path]:
    """cron(8) ignores names containing a dot or ending in ~ (package leftovers)."""
    if not directory.is_dir():
        return []
    return [
        p for p in sorted(directory.iterdir())
        if p.is_file() and "." not in p.name and not p.name.endswith("~")
    ]


def _lines(path: Path, with_user: bool) -> list[tuple[str | None, str, str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        log.warning("cannot read crontab %s: %s", path, exc.strerror)
        return []
    entries = []
    for raw in text.splitlines():
        entry = _parse_line(raw.strip(), with_user)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_line(line: str, with_user: bool) -> tuple[str | None, str, str] | None:
    if not line or line.startswith("#"):
        return None
    words = line.split()
    if words[0].startswith("@"):
        if words[0] not in NICKNAMES:  # @reboot and typos: no cadence
            return None
        schedule, rest = NICKNAMES[words[0]], words[1:]
    else:
        if "=" in words[0] or len(words) < 6:  # environment assignment or too short
            return None
        schedule, rest = " ".join(words[:5]), words[5:]
    user = None
    if with_user:
        if not rest:
            return None
        user, rest = rest[0], rest[1:]
    if not rest or not croniter.is_valid(schedule):
        return None
    return user, schedule, " ".join(rest)


def _add(found: dict[JobKey, Discovered], user: str | None, schedule: str, command: str,
         path: Path) -> None:
    name = job_name_in(command)
    if name is None or user is None:
        return
    problem = _schedule_refusal(schedule)
    if problem is not None:
        log.warning("%s: %s: the line for job %s is ignored", path, problem, name)
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        log.warning("%s: unknown user %r on the line for job %s", path, user, name)
        return
    key = JobKey(entry.pw_uid, name)
    found[key] = Discovered(key, user, schedule)


def job_name_in(command: str) -> str | None:
    """The -n/--name value of the first cronwrap invocation in a crontab command, if valid."""
    try:
        words = shlex.split(command.split("%")[0])  # cron feeds the rest to stdin
    except ValueError:
        return None
    for index, word in enumerate(words):
        if os.path.basename(word) == "cronwrap":
            name = _name_option(words[index + 1:])
            return name if is_valid_job_name(name) else None
    return None


def _name_option(words: list[str]) -> str | None:
    for index, word in enumerate(words):
        if word == "--":
            return None
        if word in NAME_OPTIONS and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--name="):
            return word.removeprefix("--name=")
        if word.startswith("-n") and len(word) > 2 and not word.startswith("--"):
            return word[2:]
    return None
