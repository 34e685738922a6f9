"""Rate limits: log lines bounded per owner, cause and interval; per-owner budgets."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from cronwrap.wrapper.events import safe_text

log = logging.getLogger("cronwrap.agent")

OTHER_CAUSES = "other causes"
MAX_LINE_CHARS = 1000  # a logged detail longer than this is cut (events.cut_text's mark)
DEFAULT_LOG_LINES_PER_OWNER = 10  # [agent] log_lines_per_owner: lines a minute per user
MAX_CAUSES_PER_OWNER = 16  # an owner's further causes share one line: OTHER_CAUSES
OTHER_OWNERS = -1  # not a uid: where owners' causes go while the whole table is full


class OwnerBudget:
    """A token bucket per owner: `capacity` tokens, refilled evenly over `period` seconds."""

    MAX_OWNERS = 10000

    def __init__(self, capacity: int, period: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._rate = capacity / period
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # owner -> (tokens, when)

    def take(self, owner: int, count: float = 1.0) -> bool:
        """Spend `count` of `owner`'s tokens; False (nothing spent) when fewer are left."""
        now = self._clock()
        tokens, when = self._buckets.get(owner, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - when) * self._rate)
        if len(self._buckets) >= self.MAX_OWNERS:
            self._forget_full_buckets(now)
        if tokens < count:
            self._buckets[owner] = (tokens, now)
            return False
        self._buckets[owner] = (tokens - count, now)
        return True

    def available(self, owner: int) -> float:
        """`owner`'s tokens now."""
        tokens, when = self._buckets.get(owner, (float(self.capacity), self._clock()))
        return min(float(self.capacity), tokens + (self._clock() - when) * self._rate)

    def wait(self, owner: int, count: float) -> float:
        """Seconds until `owner` has `count` tokens (at most `capacity` can be waited for)."""
        missing = min(count, self.capacity) - self.available(owner)
        return max(0.0, missing / self._rate)

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket that has refilled is the same as no bucket: drop those."""
        self._buckets = {owner: (tokens, when) for owner, (tokens, when) in self._buckets.items()
                         if tokens + (now - when) * self._rate < self.capacity}


class OwnerLines:
    """The one budget of log lines per owner (uid) that every RateLimitedLog spends from.

    Each owner may cause at most `per_minute` lines a minute, whatever the source and cause;
    the rest are counted and the owner's next line says how many were left out.  Lines about
    no owner (the agent's own state) are not charged.
    """

    def __init__(self, per_minute: int = DEFAULT_LOG_LINES_PER_OWNER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.configure(per_minute)

    def configure(self, per_minute: int) -> None:
        self._budget = OwnerBudget(per_minute, 60.0, self._clock)
        self._suppressed: Counter[int] = Counter()
        self.left_out = 0  # lines about owners not logged, repeats of a cause included

    def admit(self, owner: int | None) -> str | None:
        """None: drop the line (counted); else a suffix for it ("" or the count left out)."""
        if owner is None:
            return ""
        if not self._budget.take(owner):
            if owner in self._suppressed or len(self._suppressed) < OwnerBudget.MAX_OWNERS:
                self._suppressed[owner] += 1
            return None
        left_out = self._suppressed.pop(owner, 0)
        return f" ({left_out} more lines of uid {owner} left out)" if left_out else ""


OWNER_LINES = OwnerLines()


class RateLimitedLog:
    """Logs each distinct cause of each owner at most once per `interval`, with a count.

    A cause is a class of problem named by the agent ("malformed message", "schedule
    refused"), never a user's text; the detail may carry that text, made printable and cut
    (events.safe_text).  Lines about an owner also spend that owner's OWNER_LINES budget.  At
    most `max_causes` causes are tracked at once, and at most MAX_CAUSES_PER_OWNER per owner:
    further causes share one line, so neither a flood of distinct causes nor one owner can
    take the table from the others.
    """

    def __init__(self, what: str = "rejected event", interval: float = 60.0,
                 max_causes: int = 1000, clock: Callable[[], float] = time.monotonic,
                 lines: OwnerLines | None = None) -> None:
        self.what = what
        self.interval = interval
        self.max_causes = max_causes
        self._clock = clock
        self._lines = lines or OWNER_LINES
        # owner -> cause -> (when last logged, suppressed since)
        self._table: dict[int | None, dict[str, tuple[float, int]]] = {}
        self._size = 0

    def warning(self, cause: str, detail: str, owner: int | None = None) -> None:
        now = self._clock()
        owner, key = self._place(owner, cause, now)
        if key != cause:
            detail = f"{cause}: {detail}"
        causes = self._table.setdefault(owner, {})
        last, suppressed = causes.get(key, (now - self.interval, 0))
        admitted = None if now - last < self.interval else self._lines.admit(owner)
        self._size += key not in causes
        if admitted is None:
            causes[key] = (last, suppressed + 1)
            self._lines.left_out += owner is not None
            return
        causes[key] = (now, 0)
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        text = safe_text(f"{key}: {detail}", MAX_LINE_CHARS)
        log.warning("%s: %s%s%s", self.what, text, more, admitted)

    def _place(self, owner: int | None, cause: str, now: float) -> tuple[int | None, str]:
        """Where (owner, cause) is counted: its own entry, or OTHER_CAUSES when the owner's
        share or the whole table is full (of causes logged within the interval)."""
        causes = self._table.get(owner, {})
        if cause in causes:
            return owner, cause
        if owner is not None and len(causes) >= MAX_CAUSES_PER_OWNER:
            self._forget_quiet(now, owner)
            if len(self._table.get(owner, {})) >= MAX_CAUSES_PER_OWNER:
                return owner, OTHER_CAUSES
        if self._size >= self.max_causes:
            for quiet in list(self._table):
                self._forget_quiet(now, quiet)
            if self._size >= self.max_causes:
                return (owner if owner in self._table else OTHER_OWNERS), OTHER_CAUSES
        return owner, cause

    def _forget_quiet(self, now: float, owner: int | None) -> None:
        """Drop the owner's causes logged over an interval ago with nothing suppressed since."""
        causes = self._table.pop(owner, {})
        kept = {cause: entry for cause, entry in causes.items()
                if entry[1] or now - entry[0] < self.interval}
        self._size -= len(causes) - len(kept)
        if kept:
            self._table[owner] = kept
