"""A model of Debian cron's main loop, minute by minute, used as ground truth for schedules.

A transcription of cron 3.0pl1-162 as Debian patches it (debian/patches/features/
Better-timeskip-handling.patch and fixes/Check_for_timezone_changes.patch): `main`'s loop over
timeRunning / virtualTime / clockTime and its wakeupKind cases, `find_jobs(vtime, doWild,
doNonWild)`, `set_time` (clockTime = (time() + GMToff) / 60, GMToff from localtime() each
minute) and entry.c's MIN_STAR / HR_STAR / DOM_STAR / DOW_STAR flags.  It shares no code with the
agent (its own field parser, no croniter), so the agent's arithmetic can be checked against it.

The daemon is assumed to wake promptly once per real minute and to start each queued job at
that minute (the real one sleeps 10 s between catch-up minutes that ran jobs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MINUTE = 60
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # minute hour dom month dow (7 is Sunday)
NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
             "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
             "@hourly": "0 * * * *"}


@dataclass(frozen=True)
class Entry:
    """One crontab schedule as entry.c loads it: five bit sets and the star flags."""

    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool
    wildcard: bool  # MIN_STAR or HR_STAR

    @classmethod
    def parse(cls, schedule: str) -> Entry:
        fields = NICKNAMES.get(schedule, schedule).split()
        sets = [_field(text, low, high) for text, (low, high) in zip(fields, RANGES, strict=True)]
        dows = frozenset(0 if d == 7 else d for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], dows, fields[2].startswith("*"),
                   fields[4].startswith("*"), fields[0].startswith("*") or
                   fields[1].startswith("*"))

    def matches(self, tm: time.struct_time) -> bool:
        """find_jobs' test for a virtual minute's fields (gmtime(vtime * 60))."""
        dow = (tm.tm_wday + 1) % 7  # struct tm counts from Sunday, Python's from Monday
        if tm.tm_min not in self.minutes or tm.tm_hour not in self.hours:
            return False
        if tm.tm_mon not in self.months:
            return False
        if self.dom_star or self.dow_star:
            return tm.tm_mday in self.doms and dow in self.dows
        return tm.tm_mday in self.doms or dow in self.dows


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(v) for v in span.split("-"))
        else:
            first = last = int(span)
        values.update(range(first, last + 1, int(step) if step else 1))
    return frozenset(values)


class DebianCron:
    """cron.c's main loop driven by a simulated clock; `offset(t)` is localtime's tm_gmtoff."""

    def __init__(self, schedules: dict[str, str], offset: Callable[[int], int]) -> None:
        self.entries = {name: Entry.parse(text) for name, text in schedules.items()}
        self.offset = offset

    def clock_time(self, now: int) -> int:
        return (now + self.offset(now)) // MINUTE  # set_time()

    def runs(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        """(real second, job) for every job cron starts from the minute after `start` to `end`."""
        now = start - start % MINUTE
        time_running = virtual_time = self.clock_time(now)
        while now + MINUTE <= end:
            now += MINUTE  # cron_sleep(timeRunning + 1); set_time(FALSE)
            clock_time = self.clock_time(now)
            if clock_time == time_running:
                continue
            time_running = clock_time
            diff = time_running - virtual_time
            if diff == 1:
                virtual_time = time_running
                yield from self._find(now, virtual_time, wild=True, fixed=True)
            elif 0 < diff <= 5:  # case 1: woke up late, run every missed minute
                while virtual_time < time_running:
                    virtual_time += 1
                    yield from self._find(now, virtual_time, wild=True, fixed=True)
            elif 5 < diff <= 180:  # case 2: DST begins
                yield from self._find(now, time_running, wild=True, fixed=False)
                while virtual_time < time_running:
                    virtual_time += 1
                    yield from self._find(now, virtual_time, wild=False, fixed=True)
            elif -180 < diff <= 0:  # case 3 (wakeupKind 0): DST ends, wildcard jobs only
                yield from self._find(now, time_running, wild=True, fixed=False)
            else:  # the clock jumped: follow it
                virtual_time = time_running
                yield from self._find(now, time_running, wild=True, fixed=True)

    def _find(self, now: int, vtime: int, wild: bool, fixed: bool) -> Iterator[tuple[int, str]]:
        tm = time.gmtime(vtime * MINUTE)
        for name, entry in self.entries.items():
            if (wild if entry.wildcard else fixed) and entry.matches(tm):
                yield now, name
