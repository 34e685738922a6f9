"""The watcher: every watch_interval, tells the core what it saw of the cron daemon, then that time
passed for the jobs due a look (or that the wall clock jumped, or cron's zone changed, for every
job); the core's transitions (transitions/clock.py, crond.py) decide what that does, and
`next_look` says when each job next needs one."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from .config import Config
from .core import AgentCore, Txn, Unavailable
from .lifeevents import ClockJumped, LifeEvent, TimePassed, ZoneChanged
from .model import AgentStats, JobKey, JobRecord
from .ratelimit import RateLimitedLog
from .sources import crondaemon, hostzone
from .transitions.clock import (
    MAX_SLOTS_PER_PASS,
    SLOTS_PER_OWNER_PER_PASS,
    SlotBudget,
    check,
    grace_for,
    missed_slots,
    next_look,
)
from .transitions.outcome import RUNNING_STATES

# the passing-time rules and their limits, imported from here by tests and tools
__all__ = ["MAX_SLOTS_PER_PASS", "SLOTS_PER_OWNER_PER_PASS", "SlotBudget", "Watcher", "check",
           "grace_for", "missed_slots"]

log = logging.getLogger(__name__)
WORK_PER_UPDATE = 250  # jobs and slots the watcher looks at in one writer item; then it yields


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DueQueue:
    """When each job next needs a look: a heap of (time, key); a key's latest time counts."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, JobKey]] = []
        self._when: dict[JobKey, float] = {}
        self._order = itertools.count()  # ties never compare keys

    def __len__(self) -> int:
        return len(self._when)

    def set(self, key: JobKey, when: float) -> None:
        """`key` needs a look at `when` (math.inf: not until set again), not before."""
        if self._when.get(key) == when:
            return
        self._when[key] = when
        if when != math.inf:
            heapq.heappush(self._heap, (when, next(self._order), key))
        if len(self._heap) > 2 * len(self._when) + 64:  # superseded entries: rebuild
            self._heap = [(w, next(self._order), k) for k, w in self._when.items()
                          if w != math.inf]
            heapq.heapify(self._heap)

    def drop(self, key: JobKey) -> None:
        self._when.pop(key, None)

    def pop_due(self, now: float) -> list[JobKey]:
        """The keys due at `now`, in time order; each needs `set` again to be looked at later."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._when.get(key) == when:
                del self._when[key]
                due.append(key)
        return due


class Watcher:
    """Every `watch_interval` seconds, submits TimePassed for the jobs due a look (ClockJumped
    for every job after a jump, ZoneChanged after a change of cron's zone) through the core's
    writer.

    It listens to the core (JobTableListener): a job changed by anything else is looked at in
    the next pass, then not again before its `next_look`; so an idle pass costs nothing per job.
    """

    def __init__(self, core: AgentCore, config: Config,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 zone: hostzone.HostZone | None = None,
                 daemon: crondaemon.CronDaemonWatch | None = None) -> None:
        self.core = core
        self.config = config
        self.wall = wall
        self.mono = mono
        self.zone = zone or hostzone.HostZone(core.source_state(hostzone.NAME),
                                              config.cron_timezone)
        self.daemon = daemon or crondaemon.CronDaemonWatch(config.cron_daemon,
                                                           config.cron_daemon_interval, wall, mono)
        self._gone_since: dict[tuple[JobKey, int], float] = {}
        self._last: tuple[float, float] | None = None
        self._passes = 0
        self.limiter = RateLimitedLog("watcher")
        self.due = DueQueue()
        self._running: dict[JobKey, int] = {}  # jobs running, with their wrapper's pid
        self._looked: dict[JobKey, JobRecord] = {}  # records this pass computed next looks for
        self._discovered = core.discovered
        core.add_listener(self)  # every job it has now is changed: looked at in the first pass

    # --- JobTableListener ---------------------------------------------------------------------

    def job_changed(self, record: JobRecord) -> None:
        key = record.key
        if record.state in RUNNING_STATES and record.running_pid:
            self._running[key] = record.running_pid
        else:
            self._running.pop(key, None)
        if self._looked.pop(key, None) is not record:  # not the row this pass left
            self.due.set(key, -math.inf)

    def job_removed(self, key: JobKey) -> None:
        self._running.pop(key, None)
        self.due.drop(key)

    def stats_changed(self, stats: AgentStats) -> None:
        pass

    # --- passes -------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One pass over the jobs due a look, in writer items of bounded work (WORK_PER_UPDATE),
        so the agent answers events and requests in between however long the pass.  The cron
        daemon is looked at first, so that the misses of this pass know whether it runs."""
        await self._look_at_daemon()
        now, mono = self.wall(), self.mono()
        jumped = self._jumped(now, mono)
        shift = self.zone.look(now)
        lost = self._lost_pids(now)
        budgets: dict[int, SlotBudget] = defaultdict(SlotBudget)
        self._lines_changed()
        self._looked.clear()
        everyone = jumped or shift is not None
        keys = list(self.core.jobs()) if everyone else self.due.pop_due(now)
        pending = self._pass_order({*keys, *lost})
        self._passes += 1
        while pending:
            try:
                pending = await self.core.update(lambda txn, keys=pending: self._apply(
                    txn, keys, now, jumped, shift, lost, budgets))
            except Unavailable:  # the state is read-only: the core said so once
                for key in pending:  # looked at again once it can be written
                    self.due.set(key, -math.inf)
                return
        await self._keep_zone()

    async def _look_at_daemon(self) -> None:
        seen = await self.daemon.look()
        if seen is not None:
            with contextlib.suppress(Unavailable):  # the state is read-only: the core said so
                await self.core.update(lambda txn: txn.see_daemon(seen))

    async def _keep_zone(self) -> None:
        """Keep the zone seen in the state once every job has been told it changed, so that a
        change the agent did not live to apply is seen again at its next start."""
        seen = self.zone.seen
        if seen is not None and self.core.source_state(hostzone.NAME) != seen.to_json():
            with contextlib.suppress(Unavailable):  # else kept by a later pass
                await self.core.update(lambda txn: txn.keep_place(hostzone.NAME, seen.to_json()))

    def _lines_changed(self) -> None:
        """Jobs whose crontab line came or went since the last pass are due a look (whether a
        line runs a job decides its retirement)."""
        discovered = self.core.discovered
        if discovered is self._discovered:
            return
        for key in discovered.keys() ^ self._discovered.keys():
            self.due.set(key, -math.inf)
        self._discovered = discovered

    def _pass_order(self, keys: Iterable[JobKey]) -> list[JobKey]:
        """Each owner's jobs in name order, starting one job further on each pass: an owner's
        budget is not always spent on the same jobs first."""
        by_owner: dict[int, list[JobKey]] = defaultdict(list)
        for key in sorted(keys, key=lambda key: (key.owner_uid, key.name)):
            by_owner[key.owner_uid].append(key)
        order: list[JobKey] = []
        for owned in by_owner.values():
            turn = self._passes % len(owned)
            order += owned[turn:] + owned[:turn]
        return order

    def _jumped(self, now: float, mono: float) -> bool:
        last, self._last = self._last, (now, mono)
        if last is None:
            return False
        skew = (now - last[0]) - (mono - last[1])
        if abs(skew) > self.config.clock_jump:
            log.warning("wall clock jumped by %+.1f s: expected starts recomputed from now", skew)
            return True
        return False

    def _lost_pids(self, now: float) -> dict[JobKey, int]:
        """Jobs (and their pids) whose wrapper has been gone for longer than dead_pid_grace."""
        gone = {(key, pid) for key, pid in self._running.items() if not pid_alive(pid)}
        self._gone_since = {entry: self._gone_since.get(entry, now) for entry in gone}
        return {key: pid for (key, pid), since in self._gone_since.items()
                if now - since >= self.config.dead_pid_grace}

    def _apply(self, txn: Txn, keys: list[JobKey], now: float, jumped: bool,
               shift: hostzone.ZoneShift | None, lost: dict[JobKey, int],
               budgets: dict[int, SlotBudget]) -> list[JobKey]:
        """Look at `keys` in order until WORK_PER_UPDATE is spent; the keys left for the next
        item.  Each job looked at is due again at its `next_look`."""
        work = 0
        for index, key in enumerate(keys):
            if work >= WORK_PER_UPDATE:
                return keys[index:]
            before = txn.get(key)
            if before is None:  # forgotten since the pass began
                continue
            budget = budgets[key.owner_uid]
            in_crontab = key in self.core.discovered
            event: LifeEvent = TimePassed(
                key, now, key in lost and lost[key] == before.record.running_pid,
                in_crontab, budget.left)
            if shift is not None:
                event = ZoneChanged(key, now, shift.before, shift.after)
            elif jumped:
                event = ClockJumped(key, now)
            slots = 0
            try:
                slots = txn.submit(event).slots
                job = txn.get(key)
                if job is not None:
                    self.due.set(key, next_look(job, self.core.cadence_of(job), now,
                                                self.config))
                    self._looked[key] = job.record
            except Exception as exc:  # one bad row (an old database's schedule) stops no one
                self.limiter.warning(f"job {key.name} of {before.record.owner}",
                                     f"cannot compute its expected starts (schedule "
                                     f"{self.core.cadence_of(before).schedule!r}: {exc}); "
                                     "skipped")
                self.due.set(key, now + self.config.watch_interval)
            budget.left -= slots
            work += 1 + slots
        return []
