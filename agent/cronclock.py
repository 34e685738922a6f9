"""When cron starts a schedule: the zone it reads crontabs in, Debian cron's rules at DST changes.

Debian's cron (3.0pl1 with debian/patches/features/Better-timeskip-handling.patch: cron.c `main`,
`find_jobs`, `set_time`) counts minutes of local wall-clock time, clockTime = (time() + GMToff) /
60, with GMToff re-read from localtime() every minute.  When that clock moves by other than one
minute, the main loop classifies the move (`wakeupKind`):

- forward 2..5 minutes (a late wake-up): every job of every skipped minute runs now;
- forward 6..180 minutes (DST begins): "wildcard" jobs (minute or hour field starting with `*`,
  and @hourly: flags MIN_STAR/HR_STAR set in entry.c) run for the new minute only, and every
  fixed-time job of the skipped minutes runs right after the jump;
- backward up to 180 minutes (DST ends): wildcard jobs run for each minute again, fixed-time jobs
  do not run until the clock passes the last minute already run (virtualTime);
- more than 180 minutes either way: a clock correction, every job follows the new time.

A zone named for one job (`--tz`, cronie's CRON_TZ) is evaluated as cronie's `find_jobs` does: the
job runs at every real minute whose wall-clock time in that zone matches, so a slot in a skipped
hour does not happen and a slot in a repeated hour happens twice.

Times are seconds since the epoch (UTC); "naive" times are local wall-clock readings written as
if they were UTC seconds, which is how cron itself matches fields (gmtime of virtual seconds).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from cronwrap.wrapper.events import is_valid_zone_name

MINUTE = 60
LATE_LIMIT = 4 * MINUTE  # cron.c: timeDiff <= 5 minutes, "wokeup late": every skipped minute runs
DST_LIMIT = 179 * MINUTE  # cron.c: timeDiff <= 180 minutes: DST-like; beyond it the clock jumped
PROBE_STEP = 6 * 3600  # tzdata has no two offset changes closer than a week since 1970
CHUNK = 8 * 86400  # offset changes are found and cached per chunk of this many seconds
HORIZON = 400 * 86400  # how far one search step looks for the next offset change
MAX_STEPS = 64  # search steps before a schedule is declared never to match (a leap day is 9)


@dataclass(frozen=True)
class Change:
    """A change of UTC offset: from `at` on, local time is UTC + `after` instead of + `before`."""

    at: int
    before: int
    after: int


class Zone:
    """A time zone as cron sees it: the UTC offset at each instant and where that offset changes."""

    name = ""

    def __init__(self) -> None:
        self._chunks: dict[int, tuple[Change, ...]] = {}

    def offset(self, at: float) -> int:
        """Seconds east of UTC at instant `at`."""
        raise NotImplementedError

    def changes(self, start: float, end: float) -> list[Change]:
        """Every offset change in (start, end], in order."""
        found: list[Change] = []
        for chunk in range(int(start // CHUNK), int(end // CHUNK) + 1):
            found += [c for c in self._chunk(chunk) if start < c.at <= end]
        return found

    def _chunk(self, chunk: int) -> tuple[Change, ...]:
        if chunk not in self._chunks:
            self._chunks[chunk] = tuple(self._scan(chunk * CHUNK, (chunk + 1) * CHUNK))
        return self._chunks[chunk]

    def _scan(self, start: int, end: int) -> list[Change]:
        """Offset changes in (start, end]: probe every PROBE_STEP, then bisect to the second."""
        found = []
        low, low_offset = start, self.offset(start)
        while low < end:
            high = min(low + PROBE_STEP, end)
            high_offset = self.offset(high)
            if high_offset != low_offset:
                found.append(self._bisect(low, high, low_offset, high_offset))
            low, low_offset = high, high_offset
        return found

    def _bisect(self, low: int, high: int, before: int, after: int) -> Change:
        while high - low > 1:
            middle = (low + high) // 2
            if self.offset(middle) == before:
                low = middle
            else:
                high = middle
        return Change(high, before, after)


class LocalZone(Zone):
    """The process's own zone through the C library (TZ, else /etc/localtime), as cron reads it."""

    name = "local"

    def offset(self, at: float) -> int:
        return time.localtime(at).tm_gmtoff


class NamedZone(Zone):
    """An IANA zone such as Europe/London (from the system's zoneinfo, else Python's tzdata)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._info = ZoneInfo(name)

    def offset(self, at: float) -> int:
        delta = datetime.fromtimestamp(at, self._info).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0


class UnknownZone(ValueError):
    """A zone name that is malformed or not in the zoneinfo database; str() is one line."""


@functools.cache
def zone_named(name: str) -> Zone:
    """The zone called `name`; "" is the process's local zone.  UnknownZone if there is none."""
    if not name:
        return LocalZone()
    if not is_valid_zone_name(name):
        raise UnknownZone(f"{name!r} is not a time zone name like Europe/London")
    try:
        return NamedZone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(f"unknown time zone {name!r} (not in the zoneinfo database)") from None


def reload_local_zone() -> None:
    """Read TZ and /etc/localtime again (time.tzset), forgetting the old local zone's offsets."""
    time.tzset()
    zone_named.cache_clear()


@dataclass(frozen=True)
class CronSpec:
    """A five-field cron expression and whether cron treats it as a wildcard job at a change."""

    expr: str

    @property
    def wildcard(self) -> bool:
        """entry.c sets MIN_STAR/HR_STAR when the minute or hour field starts with `*`."""
        minute, hour = self.expr.split()[:2]
        return minute.startswith("*") or hour.startswith("*")

    def first_after(self, naive: float) -> float | None:
        """The first matching naive minute strictly after `naive`; None if it never matches."""
        return _first_after(self.expr, naive)


@functools.lru_cache(maxsize=4096)
def _iterator(expr: str) -> croniter:
    # implement_cron_bug: cron ANDs day-of-month and day-of-week when either starts with `*`
    return croniter(expr, 0.0, implement_cron_bug=True)


def _first_after(expr: str, naive: float) -> float | None:
    it = _iterator(expr)  # reused: parsing costs three times a step; one thread evaluates
    it.set_current(naive, force=True)
    try:
        return float(it.get_next(float))
    except CroniterBadDateError:
        return None


class _Matches:
    """A spec's first_after, asked of croniter again only when the answer may differ: the first
    match strictly after x is the one found after an earlier floor f whenever f <= x < it.  A
    search steps through many spans of one offset before a rare match (a leap day on a Sunday:
    28 years, dozens of spans) and croniter took milliseconds for each."""

    def __init__(self, spec: CronSpec) -> None:
        self.spec = spec
        self._floor = math.inf
        self._match: float | None = None

    def first_after(self, naive: float) -> float | None:
        match = self._match
        if match is None or not self._floor <= naive < match:
            match = self._match = self.spec.first_after(naive)
            self._floor = naive
        return match


def next_start(spec: CronSpec, after: float, zone: Zone, cron_rules: bool,
               shift: Change | None = None) -> float | None:
    """The first start strictly after `after`.

    cron_rules: the zone is cron's own, so Debian cron's handling of offset changes applies;
    otherwise the schedule matches each real minute's wall-clock time in `zone` (cronie CRON_TZ).
    shift: the host's zone itself changed at `shift.at` (cron's offset went from `before` to
    `after`); cron sorts that move like any other change of its offset.
    """
    segment, offset = after, zone.offset(after)  # the search walks spans of one offset
    floor = after + offset  # a start's naive minute is strictly after this
    recent = zone.changes(after - DST_LIMIT - 2 * MINUTE, after)
    if shift is not None and (not recent or shift.at >= recent[-1].at):
        recent.append(shift)
    hold = _held_through(spec, recent[-1]) if cron_rules and recent else None
    matches = _Matches(spec)
    for _ in range(MAX_STEPS):
        changes = zone.changes(segment, segment + HORIZON)
        change = changes[0] if changes else None
        end = change.at if change else segment + HORIZON
        naive = matches.first_after(floor if hold is None else max(floor, hold))
        if naive is None:
            return None
        if naive - offset < end:
            return naive - offset
        if change is None:
            segment = end
            continue
        if cron_rules and _catches_up(spec, change, matches):
            return float(change.at)
        hold = _held_through(spec, change) if cron_rules else None
        segment, offset = change.at, change.after
        floor = change.at + change.after - 1  # the new offset's first minute is included
    return None


def _catches_up(spec: CronSpec, change: Change, matches: _Matches) -> bool:
    """Clock forward: whether cron runs the job right after the jump for a skipped minute."""
    jump = change.after - change.before
    if jump <= 0 or jump > DST_LIMIT or (jump > LATE_LIMIT and spec.wildcard):
        return False
    skipped_from, now = change.at + change.before, change.at + change.after
    first = matches.first_after(skipped_from - 1)
    return first is not None and first <= now


def _held_through(spec: CronSpec, change: Change) -> float | None:
    """Clock back: the last minute cron already ran (virtualTime); fixed jobs wait until past it."""
    jump = change.after - change.before
    if spec.wildcard or jump >= 0 or jump <= -DST_LIMIT - 2 * MINUTE:
        return None
    return float(change.at + change.before - MINUTE)
