"""Expected start times of a cadence (in cron's zone, cronclock) and cronwrap jobs in crontabs."""

from __future__ import annotations

import functools
import logging
import math
import pwd
import re
import time
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter
from cronwrap.wrapper.events import Cadence

from . import cronclock
from .linenames import job_name_in, line_job, logged_command
from .model import JobKey, JobSource

__all__ = ["job_name_in"]  # the crontab name rule lives in linenames; re-exported for callers

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
CRON_TZ_LINE = re.compile(r"""CRON_TZ\s*=\s*(["']?)([^"'\s]*)\1\s*""")
CRONIE_DAEMONS = ("usr/sbin/crond", "usr/bin/crond", "usr/sbin/cron")


@dataclass(frozen=True)
class Discovered:
    """A job found on a crontab line, with the CRON_TZ cron applies to it (cronie), and where
    its runs are learnt from: the wrapper's events, or cron's log for a line not wrapped."""

    key: JobKey
    owner: str
    schedule: str
    tz: str | None = None
    source: JobSource = JobSource.wrapper


@functools.lru_cache(maxsize=4096)
def is_valid_schedule(expr: str) -> bool:
    return croniter.is_valid(NICKNAMES.get(expr, expr))


def next_after(cadence: Cadence, after: float, cron_zone: str = "") -> float | None:
    """The first expected start strictly after `after`, None without a schedule or period.

    A schedule is evaluated in the cadence's own zone (`--tz`, CRON_TZ) if it names one, else in
    `cron_zone` ("": this process's local zone) with Debian cron's rules at offset changes.
    """
    if cadence.schedule and is_valid_schedule(cadence.schedule):
        spec = cronclock.CronSpec(NICKNAMES.get(cadence.schedule, cadence.schedule))
        zone = _zone(cadence.tz or cron_zone)
        if zone is None:
            return None
        return cronclock.next_start(spec, after, zone, cron_rules=not cadence.tz)
    if cadence.every:
        return after + cadence.every
    return None


def next_on_grid(cadence: Cadence, slot: float, now: float, cron_zone: str = "") -> float | None:
    """The first expected start after `now` on the grid through `slot` (--every keeps its phase)."""
    if cadence.every and not (cadence.schedule and is_valid_schedule(cadence.schedule)):
        return slot + (math.floor((now - slot) / cadence.every) + 1) * cadence.every
    return next_after(cadence, now, cron_zone)


def period(cadence: Cadence, at: float, cron_zone: str = "") -> float | None:
    """The interval between the two expected starts following `at`."""
    first = next_after(cadence, at, cron_zone)
    if first is None:
        return None
    second = next_after(cadence, first, cron_zone)
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


_unknown_zones: set[str] = set()


def _zone(name: str) -> cronclock.Zone | None:
    try:
        return cronclock.zone_named(name)
    except cronclock.UnknownZone as exc:
        if name not in _unknown_zones:  # once per name, not once per watcher pass
            _unknown_zones.add(name)
            log.warning("%s: jobs with this zone have no expected start", exc)
        return None


def honours_cron_tz(root: Path) -> bool:
    """Whether the host's cron reads CRON_TZ lines: cronie does, Debian's cron does not.

    cronie's daemon names CRON_TZ in its binary (find_jobs reads it from each entry's
    environment); Debian's cron, busybox and the rest do not.
    """
    for name in CRONIE_DAEMONS:
        try:
            with (root / name).open("rb") as daemon:
                if b"CRON_TZ" in daemon.read():
                    return True
        except OSError:
            continue
    return False


def discover(root: Path, cron_tz: bool = False, plain_lines: bool = False
             ) -> dict[JobKey, Discovered]:
    """Every cronwrap job in system and user crontabs; cron_tz: honour CRON_TZ lines (cronie);
    plain_lines: every other line too, named by linenames' rule (cron's log reports its runs)."""
    found: dict[JobKey, Discovered] = {}
    system = [p for p in [root / "etc/crontab"] if p.exists()] + _cron_d_files(root / "etc/cron.d")
    for path in system:
        for user, schedule, command, tz in _lines(path, with_user=True):
            _add(found, user, schedule, command, path, tz if cron_tz else None, plain_lines)
    spool = root / "var/spool/cron/crontabs"
    if spool.is_dir():
        for path in sorted(spool.iterdir()):
            if path.is_file() and not path.is_symlink():
                for _, schedule, command, tz in _lines(path, with_user=False):
                    _add(found, path.name, schedule, command, path, tz if cron_tz else None,
                         plain_lines)
    return found


def _cron_d_files(directory: Path) -> list[Path]:
    """cron(8) ignores names containing a dot or ending in ~ (package leftovers)."""
    if not directory.is_dir():
        return []
    return [
        p for p in sorted(directory.iterdir())
        if p.is_file() and "." not in p.name and not p.name.endswith("~")
    ]


def _lines(path: Path, with_user: bool) -> list[tuple[str | None, str, str, str | None]]:
    """(user, schedule, command, the CRON_TZ set above the line) for each job line; the command
    is kept as cron keeps it (leading blanks dropped, the rest verbatim)."""
    try:
        text = path.read_text(errors="surrogateescape")
    except OSError as exc:
        log.warning("cannot read crontab %s: %s", path, exc.strerror)
        return []
    entries = []
    tz: str | None = None
    for raw in text.split("\n"):  # cron reads up to "\n": a "\r" belongs to the command
        setting = CRON_TZ_LINE.fullmatch(raw.strip())
        if setting:
            tz = setting.group(2) or None
            continue
        entry = _parse_line(raw, with_user)
        if entry is not None:
            entries.append((*entry, tz))
    return entries


_TIME_FIELDS = re.compile(r"[ \t]*(@\S+|(?:\S+[ \t]+){4}\S+)[ \t]+(.*)")
_USER_FIELD = re.compile(r"(\S+)[ \t]+(.*)")


def _parse_line(line: str, with_user: bool) -> tuple[str | None, str, str] | None:
    """(user, schedule, command) of a crontab line with a cadence, None for anything else
    (comments, environment settings, @reboot, lines cron would refuse)."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = _TIME_FIELDS.fullmatch(line)
    if fields is None:
        return None
    when, rest = fields.groups()
    if when.startswith("@"):
        if when not in NICKNAMES:  # @reboot and typos: no cadence
            return None
        schedule = NICKNAMES[when]
    else:
        if "=" in when.split()[0]:  # an environment setting
            return None
        schedule = " ".join(when.split())
    user = None
    if with_user:
        user_field = _USER_FIELD.fullmatch(rest)
        if user_field is None:
            return None
        user, rest = user_field.groups()
    if not rest.strip() or not croniter.is_valid(schedule):
        return None
    return user, schedule, rest


def _add(found: dict[JobKey, Discovered], user: str | None, schedule: str, command: str,
         path: Path, tz: str | None, plain_lines: bool) -> None:
    job = line_job(logged_command(command))
    if user is None or not (job.wrapped or plain_lines):
        return
    name = job.name
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
    source = JobSource.wrapper if job.wrapped else JobSource.cron_log
    found[key] = Discovered(key, user, schedule, tz, source)
