"""Expected start times of a cadence (in cron's zone, cronclock); the job a crontab line runs."""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass

from croniter import croniter
from cronwrap.wrapper.events import MAX_SCHEDULE_CHARS, SCHEDULE_PATTERN, Cadence

from . import cronclock
from .linenames import job_name_in
from .model import JobKey, JobSource
from .ratelimit import RateLimitedLog

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


@dataclass(frozen=True)
class Discovered:
    """A job found on a crontab line, with the CRON_TZ cron applies to it (cronie), and where
    its runs are learnt from: the wrapper's events, or cron's log for a line not wrapped."""

    key: JobKey  # a line that is not wrapped is named by the core: its name is "" until then
    owner: str
    schedule: str
    tz: str | None = None
    source: JobSource = JobSource.wrapper
    crontab: str = ""  # the crontab the line is in, e.g. /var/spool/cron/crontabs/alice
    bounds: Cadence = Cadence()  # the line's --min-duration, --max-duration, --no-duration-...
    command_line: str | None = None  # the line's command as cron logs it (its identity)
    ignored: str | None = None  # why cron will never run the line (None: it runs it)


@functools.lru_cache(maxsize=4096)
def is_valid_schedule(expr: str) -> bool:
    """Cron syntax, in printable ASCII only (the agent never keeps a schedule with more)."""
    return (re.fullmatch(SCHEDULE_PATTERN, expr) is not None
            and croniter.is_valid(NICKNAMES.get(expr, expr)))


def next_after(cadence: Cadence, after: float, cron_zone: str = "",
               shift: cronclock.Change | None = None) -> float | None:
    """The first expected start strictly after `after`, None without a schedule or period.

    A schedule is evaluated in the cadence's own zone (`--tz`, CRON_TZ) if it names one, else in
    `cron_zone` ("": this process's local zone) with Debian cron's rules at offset changes
    (`shift`: cron's zone itself changed, see cronclock.next_start).
    """
    if cadence.schedule and is_valid_schedule(cadence.schedule):
        spec = cronclock.CronSpec(NICKNAMES.get(cadence.schedule, cadence.schedule))
        zone = _zone(cadence.tz or cron_zone)
        if zone is None:
            return None
        return cronclock.next_start(spec, after, zone, cron_rules=not cadence.tz,
                                    shift=None if cadence.tz else shift)
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
    syntax that fires on some date (`0 0 30 2 *` never does: no start could be expected), a
    zone must be in this host's zoneinfo database (the wrapper checks that too)."""
    if cadence.tz is not None and not _is_known_zone(cadence.tz):
        return "unknown time zone: the cadence's tz is not in this host's zoneinfo database"
    if cadence.schedule and len(cadence.schedule) > MAX_SCHEDULE_CHARS:
        # never parsed: croniter's cost grows with it (seconds for a 60 KB minute field
        # Debian's crontab(1) accepts), and the agent keeps no longer schedule
        return f"schedule longer than {MAX_SCHEDULE_CHARS} characters"
    return _schedule_refusal(cadence.schedule) if cadence.schedule else None


@functools.lru_cache(maxsize=256)
def _is_known_zone(name: str) -> bool:
    try:
        cronclock.zone_named(name)
    except cronclock.UnknownZone:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _schedule_refusal(expr: str) -> str | None:
    if not is_valid_schedule(expr):
        return f"schedule {expr!r} is not a cron expression"
    try:
        upcoming = next_after(Cadence(schedule=expr), time.time())
    except ValueError:  # croniter gives up on a schedule that matches no date
        upcoming = None
    return None if upcoming is not None else f"schedule {expr!r} never fires"


# one line an hour for every unknown zone together, with a count: a zone is a user's text
ZONE_LINES = RateLimitedLog("schedule", interval=3600.0)


def _zone(name: str) -> cronclock.Zone | None:
    try:
        return cronclock.zone_named(name)
    except cronclock.UnknownZone as exc:
        ZONE_LINES.warning("unknown zone", f"{exc}: jobs with this zone have no expected "
                           "start")
        return None
