"""The watcher: every watch_interval, tells the core that time passed for every job (or that the
wall clock jumped); the core's transitions (transitions/clock.py) decide what that does."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable

from .config import Config
from .core import AgentCore, Txn, Unavailable
from .lifeevents import ClockJumped, TimePassed
from .model import JobKey
from .ratelimit import RateLimitedLog
from .transitions.clock import (
    MAX_SLOTS_PER_PASS,
    SLOTS_PER_OWNER_PER_PASS,
    SlotBudget,
    check,
    grace_for,
    missed_slots,
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


class Watcher:
    """Every `watch_interval` seconds, submits TimePassed (ClockJumped after a jump) for every
    job through the core's writer."""

    def __init__(self, core: AgentCore, config: Config,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.config = config
        self.wall = wall
        self.mono = mono
        self._gone_since: dict[tuple[JobKey, int], float] = {}
        self._last: tuple[float, float] | None = None
        self._passes = 0
        self.limiter = RateLimitedLog("watcher")

    async def tick(self) -> None:
        """One pass over every job, in writer items of bounded work (WORK_PER_UPDATE), so the
        agent answers events and requests in between however long the pass."""
        now, mono = self.wall(), self.mono()
        jumped = self._jumped(now, mono)
        lost = self._lost_pids(now)
        budgets: dict[int, SlotBudget] = defaultdict(SlotBudget)
        pending = self._pass_order(list(self.core.jobs()))
        self._passes += 1
        while pending:
            try:
                pending = await self.core.update(lambda txn, keys=pending: self._apply(
                    txn, keys, now, jumped, lost, budgets))
            except Unavailable:  # the state is read-only: the core said so once
                return

    def _pass_order(self, keys: list[JobKey]) -> list[JobKey]:
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
        running = {key: job.record.running_pid for key, job in self.core.jobs().items()
                   if job.record.state in RUNNING_STATES and job.record.running_pid}
        gone = {(key, pid) for key, pid in running.items() if pid and not pid_alive(pid)}
        self._gone_since = {entry: self._gone_since.get(entry, now) for entry in gone}
        return {key: pid for (key, pid), since in self._gone_since.items()
                if now - since >= self.config.dead_pid_grace}

    def _apply(self, txn: Txn, keys: list[JobKey], now: float, jumped: bool,
               lost: dict[JobKey, int], budgets: dict[int, SlotBudget]) -> list[JobKey]:
        """Check `keys` in order until WORK_PER_UPDATE is spent; the keys left for the next item."""
        work = 0
        for index, key in enumerate(keys):
            if work >= WORK_PER_UPDATE:
                return keys[index:]
            job = txn.get(key)
            if job is None:  # forgotten since the pass began
                continue
            budget = budgets[key.owner_uid]
            event = ClockJumped(key, now) if jumped else TimePassed(
                key, now, key in lost and lost[key] == job.record.running_pid,
                key in self.core.discovered, budget.left)
            slots = 0
            try:
                slots = txn.submit(event).slots
            except Exception as exc:  # one bad row (an old database's schedule) stops no one
                self.limiter.warning("no expected starts", f"job {key.name} of "
                                     f"{job.record.owner}: cannot compute its expected starts "
                                     f"(schedule {self.core.cadence_of(job).schedule!r}: {exc}); "
                                     "skipped", key.owner_uid)
            budget.left -= slots
            work += 1 + slots
        return []
